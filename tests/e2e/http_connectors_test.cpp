// The HTTP connectors end to end: the ingest extractor answering real
// clients, and the webhook loader posting to a real server.
#include "child_process.hpp"
#include "http_client.hpp"
#include "fake_openai_server.hpp"
#include "free_port.hpp"
#include "gzip.hpp"
#include "postgres_server.hpp"
#include "record_accounting.hpp"
#include "temp_dir.hpp"

#include <Poco/DeflatingStream.h>
#include <Poco/Net/Context.h>
#include <Poco/Net/HTTPClientSession.h>
#include <Poco/Net/HTTPSClientSession.h>
#include <Poco/Net/HTTPRequest.h>
#include <Poco/Net/HTTPResponse.h>
#include <Poco/Net/ServerSocket.h>
#include <Poco/StreamCopier.h>

#include <boost/json.hpp>
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <csignal>
#include <sstream>
#include <thread>

using namespace sluice::test;
namespace bj = boost::json;
using namespace std::chrono_literals;

namespace {

struct Response {
    int status = 0;
    std::string body, retry_after, www_authenticate;
};

Response post(int port, const std::string &path, const std::string &body, const std::string &type = "application/x-ndjson",
              const std::string &auth = "", const std::string &encoding = "") {
    std::vector<std::pair<std::string, std::string>> headers;
    if (!auth.empty()) headers.emplace_back("Authorization", auth);
    if (!encoding.empty()) headers.emplace_back("Content-Encoding", encoding);
    HttpReply reply = http_request(port, Poco::Net::HTTPRequest::HTTP_POST, path, body, headers, type);
    return {reply.status, reply.body, reply.header("Retry-After"), reply.header("WWW-Authenticate")};
}

// POST over HTTPS trusting `ca`, optionally presenting a client certificate.
Response post_tls(int port, const std::string &body, const std::string &ca, const std::string &cert = "",
                  const std::string &key = "") {
    Response r;
    try {
        Poco::Net::Context::Ptr context = new Poco::Net::Context(Poco::Net::Context::TLS_CLIENT_USE, key, cert, ca,
                                                                 Poco::Net::Context::VERIFY_RELAXED, 9, false);
        Poco::Net::HTTPSClientSession s("127.0.0.1", Poco::UInt16(port), context);
        Poco::Net::HTTPRequest req(Poco::Net::HTTPRequest::HTTP_POST, "/ingest", Poco::Net::HTTPMessage::HTTP_1_1);
        req.setContentType("application/x-ndjson");
        req.setContentLength(std::streamsize(body.size()));
        s.sendRequest(req) << body;
        Poco::Net::HTTPResponse res;
        Poco::StreamCopier::copyToString(s.receiveResponse(res), r.body);
        r.status = int(res.getStatus());
    } catch (const Poco::Exception &e) {
        r.status = -1;
        r.body = e.displayText();
    }
    return r;
}

// A self-signed certificate and its key, for `name` at 127.0.0.1.
void make_certificate(const std::string &cert, const std::string &key, const std::string &name) {
    std::string cmd = "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=" + name +
                      " -addext subjectAltName=DNS:localhost,IP:127.0.0.1 -keyout " + key + " -out " + cert +
                      " > /dev/null 2>&1";
    ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
}

} // namespace

TEST(HttpIngest, ConcurrentClientsEveryAcceptedRecordIsLoaded) {
    TempDir dir;
    const int port = free_loopback_port();
    setenv("SLUICE_TEST_INGEST_TOKEN", "s3cret", 1);
    std::string m = dir.write("m.json", R"({"name":"ingest","stages":[
  {"id":"in","kind":"extractor","plugin":"http","batch_size":200,
   "config":{"port":)" + std::to_string(port) + R"(,"bearer_token_env":"SLUICE_TEST_INGEST_TOKEN","max_body_bytes":20000}},
  {"id":"valid","kind":"validator","plugin":"rules","config":{"rules":[{"field":"n","required":true,"type":"integer"}]}},
  {"id":"out","kind":"loader","plugin":"file","inputs":["valid.pass"],"config":{"path":"out.ndjson","append":true}}]})");
    ChildProcess sluice({sluice_binary(), "run", m, "--report", dir / "r.json", "--log-level", "info"});
    unsetenv("SLUICE_TEST_INGEST_TOKEN");
    ASSERT_TRUE(sluice.wait_for_err("listening on http://127.0.0.1:")) << sluice.err_so_far();
    const std::string auth = "Bearer s3cret";

    // The refusals first: each with its status and a reason.
    Response bad = post(port, "/ingest", "{\"n\":1}\n{\"n\":2}\n{\"n\": oops}\n", "application/x-ndjson", auth);
    EXPECT_EQ(bad.status, 400);
    EXPECT_NE(bad.body.find("line 3: invalid JSON"), std::string::npos) << bad.body;
    Response unauthorized = post(port, "/ingest", "{\"n\":1}\n");
    EXPECT_EQ(unauthorized.status, 401);
    EXPECT_EQ(unauthorized.www_authenticate, "Bearer");
    EXPECT_EQ(post(port, "/ingest", "{\"n\":1}\n", "application/x-ndjson", "Bearer wrong").status, 401);
    EXPECT_EQ(post(port, "/ingest", std::string(30000, ' '), "application/x-ndjson", auth).status, 413);
    EXPECT_EQ(post(port, "/elsewhere", "{\"n\":1}\n", "application/x-ndjson", auth).status, 404);
    EXPECT_EQ(post(port, "/ingest", "[{\"n\":1}, 2]", "application/json", auth).status, 400);

    // 8 clients x 25 requests x 20 records, NDJSON and JSON arrays.
    std::atomic<int> accepted{0}, other{0};
    std::vector<std::thread> clients;
    for (int c = 0; c < 8; ++c) {
        clients.emplace_back([&, c] {
            for (int r = 0; r < 25; ++r) {
                std::string body;
                bool array = (c + r) % 2 == 0;
                if (array) body = "[";
                for (int k = 0; k < 20; ++k) {
                    std::string rec = "{\"n\":" + std::to_string((c * 25 + r) * 20 + k) + "}";
                    if (array) body += (k ? "," : "") + rec;
                    else body += rec + "\n";
                }
                if (array) body += "]";
                for (;;) {
                    Response resp = post(port, "/ingest", body, array ? "application/json" : "application/x-ndjson", auth);
                    if (resp.status == 202) {
                        ++accepted;
                        break;
                    }
                    if (resp.status != 429) {
                        ++other;
                        break;
                    }
                    std::this_thread::sleep_for(50ms); // told to come back later
                }
            }
        });
    }
    for (auto &t : clients) t.join();
    EXPECT_EQ(accepted.load(), 200);
    EXPECT_EQ(other.load(), 0);
    // 202 means delivered (respond: delivered, the default): every record is
    // in the file before the pipeline is even asked to stop.
    EXPECT_EQ(read_lines(dir / "out.ndjson").size(), 4000u);
    // It runs until signalled; a graceful stop passes on everything accepted.
    sluice.signal(SIGTERM);
    ProcessResult r = sluice.wait(30s);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.err.find("durable only when the run ends"), std::string::npos) << r.err;
    bj::object rep = read_checked_report(dir / "r.json");
    EXPECT_EQ(rep.at("records").at("extracted").to_number<int64_t>(), 4000);
    auto lines = read_lines(dir / "out.ndjson");
    ASSERT_EQ(lines.size(), 4000u);
    std::vector<bool> seen(4000, false);
    for (const auto &l : lines) seen[size_t(bj::parse(l).at("n").as_int64())] = true;
    EXPECT_EQ(std::count(seen.begin(), seen.end(), true), 4000);
}

TEST(HttpIngest, ABackedUpPipelineAnswers429WithRetryAfter) {
    TempDir dir;
    const int port = free_loopback_port();
    std::string m = dir.write("m.json", R"({"name":"slow","plugin_dirs":[")" + std::string(SLUICE_TEST_PLUGIN_DIR) + R"("],
  "stages":[
  {"id":"in","kind":"extractor","plugin":"http","batch_size":10,"config":{"port":)" + std::to_string(port) +
                                            R"(,"buffer_records":20,"retry_after_s":2}},
  {"id":"out","kind":"loader","plugin":"probe_sink","queue_capacity":1,"config":{"batch_delay_ms":300,"durable":true}}]})");
    ChildProcess sluice({sluice_binary(), "run", m, "--log-level", "info"});
    ASSERT_TRUE(sluice.wait_for_err("listening on")) << sluice.err_so_far();
    std::string body;
    for (int k = 0; k < 20; ++k) body += "{\"k\":" + std::to_string(k) + "}\n";
    // Eight clients at once against a buffer of 20 records and a loader
    // taking 300 ms a batch: some must be told to come back later.
    std::vector<Response> answers(8);
    std::vector<std::thread> clients;
    for (size_t i = 0; i < answers.size(); ++i)
        clients.emplace_back([&, i] { answers[i] = post(port, "/ingest", body); });
    for (auto &t : clients) t.join();
    int refused = 0, accepted = 0;
    for (const Response &a : answers) {
        if (a.status == 429) {
            ++refused;
            EXPECT_EQ(a.retry_after, "2");
        } else {
            EXPECT_EQ(a.status, 202) << a.body;
            ++accepted;
        }
    }
    EXPECT_GE(refused, 1);
    EXPECT_GE(accepted, 1);
    sluice.signal(SIGTERM);
    EXPECT_EQ(sluice.wait(30s).exit_code, 0);
}

TEST(HttpIngest, AnswersOnlyOnceDeliveredOrSaysItCouldNotConfirm) {
    TempDir dir;
    auto manifest = [&](int port, const std::string &extra, int delay_ms) {
        return dir.write("m.json", R"({"name":"confirm","plugin_dirs":[")" + std::string(SLUICE_TEST_PLUGIN_DIR) + R"("],
  "stages":[
  {"id":"in","kind":"extractor","plugin":"http","config":{"port":)" + std::to_string(port) + extra + R"(}},
  {"id":"gate","kind":"validator","plugin":"rules","config":{"rules":[{"field":"k","type":"integer"}]}},
  {"id":"out","kind":"loader","plugin":"file","inputs":["gate.pass"],"config":{"path":"out.ndjson","append":true}},
  {"id":"slow","kind":"loader","plugin":"probe_sink","inputs":["gate.pass"],"config":{"durable":true,"batch_delay_ms":)" +
                                             std::to_string(delay_ms) + "}}]}");
    };
    {
        // Delivered: the 202 comes after both branches loaded the records,
        // rejected ones (dropped by rule) included in what is confirmed.
        const int port = free_loopback_port();
        ChildProcess sluice({sluice_binary(), "run", manifest(port, "", 200), "--log-level", "info"});
        ASSERT_TRUE(sluice.wait_for_err("listening on")) << sluice.err_so_far();
        Response r = post(port, "/ingest", "{\"k\":1}\n{\"k\":\"two\"}\n{\"k\":3}\n");
        EXPECT_EQ(r.status, 202) << r.body;
        EXPECT_EQ(read_lines(dir / "out.ndjson").size(), 2u);
        sluice.signal(SIGTERM);
        EXPECT_EQ(sluice.wait(30s).exit_code, 0);
    }
    {
        // A branch slower than the client will wait: 504, and the records
        // still arrive.
        const int port = free_loopback_port();
        ChildProcess sluice({sluice_binary(), "run", manifest(port, R"(,"delivery_timeout_ms":100)", 1500), "--log-level", "info"});
        ASSERT_TRUE(sluice.wait_for_err("listening on")) << sluice.err_so_far();
        Response r = post(port, "/ingest", "{\"k\":4}\n");
        EXPECT_EQ(r.status, 504) << r.body;
        EXPECT_NE(r.body.find("not yet delivered"), std::string::npos) << r.body;
        sluice.signal(SIGTERM);
        EXPECT_EQ(sluice.wait(30s).exit_code, 0);
        EXPECT_EQ(read_lines(dir / "out.ndjson").size(), 3u);
    }
    {
        // Accepted: the 202 comes once the records are queued, before the
        // slow branch has them.
        const int port = free_loopback_port();
        ChildProcess sluice({sluice_binary(), "run", manifest(port, R"(,"respond":"accepted")", 1500), "--log-level", "info"});
        ASSERT_TRUE(sluice.wait_for_err("listening on")) << sluice.err_so_far();
        auto t0 = std::chrono::steady_clock::now();
        Response r = post(port, "/ingest", "{\"k\":5}\n");
        EXPECT_EQ(r.status, 202) << r.body;
        EXPECT_LT(std::chrono::steady_clock::now() - t0, 1500ms);
        sluice.signal(SIGTERM);
        EXPECT_EQ(sluice.wait(30s).exit_code, 0);
        EXPECT_EQ(read_lines(dir / "out.ndjson").size(), 4u);
    }
}

TEST(HttpIngest, WarnsAtStartWhenALoaderConfirmsOnlyAtTheEnd) {
    TempDir dir;
    const int port = free_loopback_port();
    std::string m = dir.write("m.json", R"({"name":"late","stages":[
  {"id":"in","kind":"extractor","plugin":"http","config":{"port":)" + std::to_string(port) + R"(}},
  {"id":"out","kind":"loader","plugin":"file","config":{"path":"out.ndjson"}}]})");
    ChildProcess sluice({sluice_binary(), "run", m, "--log-level", "info"});
    ASSERT_TRUE(sluice.wait_for_err("listening on")) << sluice.err_so_far();
    EXPECT_NE(sluice.err_so_far().find("[in] confirms delivery to its clients, but loader 'out' (file) makes records "
                                       "durable only when the run ends: every confirmation waits until then (look "
                                       "in its options for a mode that makes each batch durable as it is written, "
                                       "such as appending)"),
              std::string::npos)
        << sluice.err_so_far();
    sluice.signal(SIGTERM);
    EXPECT_EQ(sluice.wait(30s).exit_code, 0);
}

TEST(HttpIngest, TakesGzipBodiesAndBoundsWhatTheyInflateTo) {
    TempDir dir;
    const int port = free_loopback_port();
    std::string m = dir.write("m.json", R"({"name":"gz","stages":[
  {"id":"in","kind":"extractor","plugin":"http","config":{"port":)" + std::to_string(port) + R"(,"max_body_bytes":20000}},
  {"id":"out","kind":"loader","plugin":"file","config":{"path":"out.ndjson","append":true}}]})");
    ChildProcess sluice({sluice_binary(), "run", m, "--log-level", "info"});
    ASSERT_TRUE(sluice.wait_for_err("listening on")) << sluice.err_so_far();
    std::string ndjson;
    for (int i = 0; i < 100; ++i) ndjson += "{\"i\":" + std::to_string(i) + "}\n";
    Response ok = post(port, "/ingest", gzip(ndjson), "application/x-ndjson", "", "gzip");
    EXPECT_EQ(ok.status, 202) << ok.body;
    EXPECT_EQ(ok.body, "{\"accepted\":100}");
    EXPECT_EQ(read_lines(dir / "out.ndjson").size(), 100u);
    // 1 MB of spaces is a few KB gzipped, under the limit; inflated, it is not.
    std::string bomb = gzip(std::string(1 << 20, ' '));
    ASSERT_LT(bomb.size(), 20000u);
    EXPECT_EQ(post(port, "/ingest", bomb, "application/x-ndjson", "", "gzip").status, 413);
    Response bad = post(port, "/ingest", "not gzip at all", "application/x-ndjson", "", "gzip");
    EXPECT_EQ(bad.status, 400);
    EXPECT_NE(bad.body.find("the body is not valid gzip"), std::string::npos) << bad.body;
    Response br = post(port, "/ingest", ndjson, "application/x-ndjson", "", "br");
    EXPECT_EQ(br.status, 415);
    EXPECT_NE(br.body.find("unsupported Content-Encoding 'br'"), std::string::npos) << br.body;
    sluice.signal(SIGTERM);
    EXPECT_EQ(sluice.wait(30s).exit_code, 0);
    EXPECT_EQ(read_lines(dir / "out.ndjson").size(), 100u);
}

TEST(HttpIngest, ServesHttpsAndCanRequireClientCertificates) {
    TempDir dir;
    make_certificate(dir / "server.pem", dir / "server.key", "localhost");
    make_certificate(dir / "client.pem", dir / "client.key", "client");
    make_certificate(dir / "stranger.pem", dir / "stranger.key", "stranger");
    const int port = free_loopback_port();
    auto manifest = [&](const std::string &tls) {
        return dir.write("m.json", R"({"name":"tls","stages":[
  {"id":"in","kind":"extractor","plugin":"http","config":{"port":)" + std::to_string(port) + tls + R"(}},
  {"id":"out","kind":"loader","plugin":"file","config":{"path":"out.ndjson","append":true}}]})");
    };
    // Relative paths are relative to the manifest.
    std::string m = manifest(R"(,"tls_cert_file":"server.pem","tls_key_file":"server.key","tls_client_ca_file":"client.pem")");
    ChildProcess sluice({sluice_binary(), "run", m, "--log-level", "info"});
    ASSERT_TRUE(sluice.wait_for_err("listening on https://127.0.0.1:")) << sluice.err_so_far();
    Response ok = post_tls(port, "{\"a\":1}\n{\"a\":2}\n", dir / "server.pem", dir / "client.pem", dir / "client.key");
    EXPECT_EQ(ok.status, 202) << ok.body;
    EXPECT_EQ(read_lines(dir / "out.ndjson").size(), 2u);
    // No client certificate, one the CA did not sign, no TLS at all: refused.
    EXPECT_EQ(post_tls(port, "{\"a\":3}\n", dir / "server.pem").status, -1);
    EXPECT_EQ(post_tls(port, "{\"a\":3}\n", dir / "server.pem", dir / "stranger.pem", dir / "stranger.key").status, -1);
    EXPECT_EQ(post(port, "/ingest", "{\"a\":3}\n").status, -1);
    sluice.signal(SIGTERM);
    EXPECT_EQ(sluice.wait(30s).exit_code, 0);
    EXPECT_EQ(read_lines(dir / "out.ndjson").size(), 2u);

    // Half a TLS setup, or a file that is not a certificate: the manifest is refused.
    ProcessResult half = run_sluice({"validate", manifest(R"(,"tls_cert_file":"server.pem")")});
    EXPECT_NE(half.exit_code, 0);
    EXPECT_NE(half.err.find("tls_key_file: HTTPS needs both tls_cert_file and tls_key_file"), std::string::npos) << half.err;
    dir.write("junk.pem", "not a certificate\n");
    ProcessResult junk = run_sluice({"validate", manifest(R"(,"tls_cert_file":"junk.pem","tls_key_file":"server.key")")});
    EXPECT_NE(junk.exit_code, 0);
    EXPECT_NE(junk.err.find("tls_cert_file: cannot load " + dir / "junk.pem"), std::string::npos) << junk.err;
}

TEST(HttpLoader, PostsBatchesRetriesAndFailsTheRestToTheErrorPath) {
    FakeOpenAI server;
    TempDir dir;
    std::string records;
    for (int i = 0; i < 50; ++i) records += "{\"i\":" + std::to_string(i) + "}\n";
    dir.write("in.ndjson", records);
    // A call per batch (commit_records 1), so that requests can be counted.
    auto manifest = [&](const std::string &path, const std::string &format, const std::string &more = "") {
        return R"({"name":"hook","stages":[
  {"id":"in","kind":"extractor","plugin":"file","batch_size":10,"config":{"path":"in.ndjson"}},
  {"id":"out","kind":"loader","plugin":"http","commit_records":1,"on_error":{"dead_letter":"dead"},
   "config":{"url":")" + std::string("http://127.0.0.1:") + std::to_string(server.port()) + path + R"(","format":")" + format +
               R"(","headers":{"X-Source":"sluice"},"retry":{"max_attempts":3,"backoff_ms":10})" + more + R"(}},
  {"id":"dead","kind":"loader","plugin":"file","config":{"path":"dead.ndjson"}}]})";
    };
    // Two 503s on the first request, then fine: everything arrives.
    ProcessResult ok = run_sluice({"run", dir.write("m.json", manifest("/hook/a?fail_first=2", "ndjson")), "--report", dir / "r.json"});
    ASSERT_EQ(ok.exit_code, 0) << ok.err;
    bj::object stats = server.stats();
    EXPECT_EQ(stats.at("hook_records").to_number<int64_t>(), 50);
    EXPECT_EQ(stats.at("hook_requests").to_number<int64_t>(), 5) << "one per batch";
    bj::object rep = read_checked_report(dir / "r.json");
    EXPECT_EQ(rep.at("stages").as_array()[1].at("counters").at("retries").to_number<int64_t>(), 2);

    // A call's records in as many requests as max_request_bytes needs:
    // "{"i":N}\n" is 8 or 9 bytes, so 30 bytes take 3 records.
    server.reset();
    ASSERT_EQ(run_sluice({"run", dir.write("m.json", manifest("/hook/s", "ndjson", R"(,"max_request_bytes":30)"))}).exit_code, 0);
    EXPECT_EQ(server.stats().at("hook_records").to_number<int64_t>(), 50);
    EXPECT_EQ(server.stats().at("hook_requests").to_number<int64_t>(), 5 * 4) << "10 records a batch: 3 + 3 + 3 + 1";

    // As a JSON array.
    server.reset();
    ASSERT_EQ(run_sluice({"run", dir.write("m.json", manifest("/hook/b", "json"))}).exit_code, 0);
    EXPECT_EQ(server.stats().at("hook_records").to_number<int64_t>(), 50);
    EXPECT_EQ(server.stats().at("hook_content_types").as_array()[0].as_string(), "application/json");

    // A server that refuses: every record dead-lettered with the status.
    ProcessResult refused = run_sluice({"run", dir.write("m.json", manifest("/hook/c?status=422", "ndjson")), "--report", dir / "r3.json"});
    ASSERT_EQ(refused.exit_code, 3) << "nothing was delivered: " << refused.err;
    auto dead = read_lines(dir / "dead.ndjson");
    ASSERT_EQ(dead.size(), 50u);
    EXPECT_NE(dead[0].find("\"error\":\"http: HTTP 422"), std::string::npos) << dead[0];
    read_checked_report(dir / "r3.json");

    // Issue 9, D1: an endpoint that stays down is not the records' fault.
    // They used to be dead-lettered (or, by default, skipped and counted as
    // delivered); now the run fails and nothing is passed off as delivered.
    std::filesystem::remove(dir / "dead.ndjson");
    std::string down = manifest("/hook/d?status=503", "ndjson");
    down.replace(down.find("\"name\":\"hook\","), 14, "\"name\":\"hook\",\"defaults\":{\"retry_environment_ms\":200},");
    ProcessResult unavailable = run_sluice({"run", dir.write("m.json", down), "--report", dir / "r4.json"});
    EXPECT_EQ(unavailable.exit_code, 1) << unavailable.err;
    EXPECT_NE(unavailable.err.find("stage 'out' (loader http) failed: http: http://127.0.0.1:"), std::string::npos)
        << unavailable.err;
    EXPECT_NE(unavailable.err.find("/hook/d: gave up after 3 attempts: HTTP 503"), std::string::npos) << unavailable.err;
    EXPECT_TRUE(!std::filesystem::exists(dir / "dead.ndjson") || read_lines(dir / "dead.ndjson").empty());
    EXPECT_EQ(bj::parse(read_file(dir / "r4.json")).at("stages").as_array()[1].at("dead_lettered").to_number<int64_t>(), 0);
}

TEST(HttpIngest, TheHttpToPostgresExampleLoadsWhatItIsSent) {
    PostgresServer pg;
    TempDir dir;
    std::filesystem::copy(std::string(SLUICE_SOURCE_DIR) + "/pipelines", dir / "pipelines",
                          std::filesystem::copy_options::recursive);
    const int port = free_loopback_port();
    std::string m = read_file(dir / "pipelines/http_to_postgres.json");
    for (size_t p; (p = m.find("postgresql://etl@localhost:5432/shop")) != std::string::npos;) m.replace(p, 36, pg.conninfo());
    m.replace(m.find("\"port\": 8088"), 12, "\"port\": " + std::to_string(port));
    dir.write("pipelines/http_to_postgres.json", m);
    setenv("SHOP_DB_PASSWORD", "unused-with-trust-auth", 1);
    ChildProcess sluice({sluice_binary(), "run", dir / "pipelines/http_to_postgres.json", "--report", dir / "r.json",
                         "--log-level", "info"});
    unsetenv("SHOP_DB_PASSWORD");
    ASSERT_TRUE(sluice.wait_for_err("listening on")) << sluice.err_so_far();
    EXPECT_EQ(post(port, "/ingest", "{\"event\":\"view\",\"user_id\":1,\"sku\":\"A\"}\n{\"event\":\"purchase\",\"user_id\":2}\n"
                                    "{\"event\":\"teleport\",\"user_id\":3}\n").status, 202);
    EXPECT_EQ(post(port, "/ingest", "[{\"event\":\"cart\",\"user_id\":4}]", "application/json").status, 202);
    sluice.signal(SIGTERM);
    ProcessResult r = sluice.wait(30s);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    read_checked_report(dir / "r.json");
    EXPECT_EQ(pg.scalar("SELECT string_agg(event || ':' || user_id, ',' ORDER BY user_id) FROM events"),
              "view:1,purchase:2,cart:4");
    EXPECT_EQ(read_lines(dir / "out/http_to_postgres/rejects.ndjson").size(), 1u);
}

namespace {
// A raw TCP connection to the ingest, for clients that misbehave.
int connect_to(int port) {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(uint16_t(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd, reinterpret_cast<sockaddr *>(&a), sizeof a) != 0) {
        ::close(fd);
        return -1;
    }
    return fd;
}
// Whether the server has closed `fd` (reads EOF or an error at once).
bool closed_by_server(int fd) {
    char c;
    timeval tv{0, 200000};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ssize_t n = ::recv(fd, &c, 1, 0);
    return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK);
}
} // namespace

// Issue 9, R3: 64 idle TCP connections (the old server_threads default)
// blocked all ingest until the 60 s idle timeout, and 200 slowloris
// connections kept it blocked: every probe request timed out.
TEST(HttpIngest, IdleAndSlowlorisConnectionsCannotStarveTheIngest) {
    TempDir dir;
    const int port = free_loopback_port();
    std::string m = dir.write("m.json", R"({"name":"starve","stages":[
  {"id":"in","kind":"extractor","plugin":"http","config":{"port":)" + std::to_string(port) + R"(,"read_timeout_ms":1500}},
  {"id":"out","kind":"loader","plugin":"file","config":{"path":"out.ndjson","append":true}}]})");
    ChildProcess sluice({sluice_binary(), "run", m, "--log-level", "info"});
    ASSERT_TRUE(sluice.wait_for_err("listening on")) << sluice.err_so_far();
    std::vector<int> idle, slow;
    for (int i = 0; i < 64; ++i) idle.push_back(connect_to(port));
    for (int i = 0; i < 200; ++i) {
        int fd = connect_to(port);
        const char head[] = "POST /ingest HTTP/1.1\r\nHost: x\r\n";
        ::send(fd, head, sizeof head - 1, MSG_NOSIGNAL);
        slow.push_back(fd);
    }
    for (int fd : idle) ASSERT_GE(fd, 0);
    for (int fd : slow) ASSERT_GE(fd, 0);
    // Slowloris: one more header byte every 300 ms, for ever.
    std::atomic<bool> done{false};
    std::thread trickle([&] {
        while (!done) {
            for (int fd : slow) ::send(fd, "X", 1, MSG_NOSIGNAL);
            std::this_thread::sleep_for(300ms);
        }
    });
    int probes = 0;
    for (auto until = std::chrono::steady_clock::now() + 3s; std::chrono::steady_clock::now() < until; ++probes) {
        auto t0 = std::chrono::steady_clock::now();
        Response r = post(port, "/ingest", "{\"probe\":" + std::to_string(probes) + "}\n");
        auto took = std::chrono::steady_clock::now() - t0;
        EXPECT_EQ(r.status, 202) << r.body;
        EXPECT_LT(took, 1s) << "probe " << probes << " waited behind the idle and slow connections";
        std::this_thread::sleep_for(100ms);
    }
    // The head must arrive within read_timeout_ms however it trickles: by
    // now every idle and slowloris connection has been closed.
    int still_open = 0;
    for (int fd : slow) still_open += !closed_by_server(fd);
    for (int fd : idle) still_open += !closed_by_server(fd);
    done = true;
    trickle.join();
    for (int fd : idle) ::close(fd);
    for (int fd : slow) ::close(fd);
    EXPECT_EQ(still_open, 0);
    sluice.signal(SIGTERM);
    EXPECT_EQ(sluice.wait(30s).exit_code, 0);
    EXPECT_EQ(read_lines(dir / "out.ndjson").size(), size_t(probes));
}

// Past max_connections a new connection hears 503 at once and is closed.
TEST(HttpIngest, ConnectionsPastTheLimitGet503) {
    TempDir dir;
    const int port = free_loopback_port();
    std::string m = dir.write("m.json", R"({"name":"limit","stages":[
  {"id":"in","kind":"extractor","plugin":"http","config":{"port":)" + std::to_string(port) + R"(,"max_connections":10}},
  {"id":"out","kind":"loader","plugin":"null"}]})");
    ChildProcess sluice({sluice_binary(), "run", m, "--log-level", "info"});
    ASSERT_TRUE(sluice.wait_for_err("listening on")) << sluice.err_so_far();
    std::vector<int> held;
    for (int i = 0; i < 10; ++i) held.push_back(connect_to(port));
    std::this_thread::sleep_for(200ms);
    Response refused = post(port, "/ingest", "{\"a\":1}\n");
    EXPECT_EQ(refused.status, 503) << refused.body;
    EXPECT_NE(refused.body.find("too many open connections"), std::string::npos) << refused.body;
    for (int fd : held) ::close(fd);
    std::this_thread::sleep_for(200ms);
    EXPECT_EQ(post(port, "/ingest", "{\"a\":2}\n").status, 202);
    sluice.signal(SIGTERM);
    EXPECT_EQ(sluice.wait(30s).exit_code, 0);
}
