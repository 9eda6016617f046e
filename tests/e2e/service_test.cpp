// End-to-end: a running pipeline seen from outside, as ops teams watch it:
// the admin endpoint, metrics that match the report, taps, checks before a
// run, progress, JSON logs.
#include "child_process.hpp"
#include "record_accounting.hpp"
#include "temp_dir.hpp"

#include "http_client.hpp"

#include <Poco/Net/StreamSocket.h>

#include <boost/json.hpp>
#include <gtest/gtest.h>

#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <regex>
#include <thread>
#include <unistd.h>

using namespace sluice::test;
namespace bj = boost::json;
using namespace std::chrono_literals;

namespace {

HttpReply http(int port, const std::string &method, const std::string &path, const std::string &body = "",
               const std::string &auth = "") {
    std::vector<std::pair<std::string, std::string>> headers;
    if (!auth.empty()) headers.emplace_back("Authorization", auth);
    return http_request(port, method, path, body, headers, "application/x-ndjson", 10);
}

// The value of the Prometheus sample whose line starts with `series` ("name{labels}").
double sample(const std::string &metrics, const std::string &name, const std::map<std::string, std::string> &labels) {
    std::istringstream in(metrics);
    for (std::string line; std::getline(in, line);) {
        if (line.rfind(name + (labels.empty() ? " " : "{"), 0) != 0) continue;
        bool all = true;
        for (const auto &[k, v] : labels) all = all && line.find(k + "=\"" + v + "\"") != std::string::npos;
        if (all) return std::stod(line.substr(line.rfind(' ') + 1));
    }
    return -1;
}

} // namespace

// A service: http ingest -> gate -> file. The endpoint answers while it runs,
// and what /metrics says after the requests were answered is what the final
// report says.
TEST(AdminEndpoint, ServesHealthReadyStatusAndMetricsThatMatchTheReport) {
    TempDir dir;
    std::string m = dir.write("m.json", R"({"name":"svc","stages":[
      {"id":"in","kind":"extractor","plugin":"http","config":{"port":0}},
      {"id":"gate","kind":"validator","plugin":"rules","config":{"rules":[{"field":"n","min":0}]}},
      {"id":"out","kind":"loader","plugin":"file","inputs":["gate.pass"],"config":{"path":"out.ndjson","append":true}}]})");
    ChildProcess p({sluice_binary(), "run", m, "--admin", "127.0.0.1:0", "--report", dir / "report.json"});
    const int admin = port_after(p, "admin endpoint listening on http://127.0.0.1:");
    const int ingest = port_after(p, "[in] listening on http://127.0.0.1:");
    ASSERT_GT(admin, 0) << p.err_so_far();
    ASSERT_GT(ingest, 0) << "the port the system chose is shown at the default level: " << p.err_so_far();

    EXPECT_EQ(http(admin, "GET", "/health").status, 200);
    HttpReply ready;
    for (int i = 0; i < 100 && (ready = http(admin, "GET", "/ready")).status != 200; ++i) std::this_thread::sleep_for(50ms);
    EXPECT_EQ(ready.status, 200) << ready.body;
    EXPECT_EQ(bj::parse(ready.body).at("ready"), true);

    std::string body;
    for (int i = 0; i < 30; ++i) body += R"({"n":)" + std::to_string(i % 10 == 9 ? -1 : i) + "}\n";
    HttpReply accepted = http(ingest, "POST", "/ingest", body);
    EXPECT_EQ(accepted.status, 202) << accepted.body;
    HttpReply refused = http(ingest, "POST", "/ingest", "{\"n\":1}\nnot json\n");
    EXPECT_EQ(refused.status, 400);
    EXPECT_EQ(http(admin, "GET", "/nowhere").status, 404);

    // The requests are counted by status code once the stage has pulled.
    std::string metrics;
    for (int i = 0; i < 100; ++i) {
        metrics = http(admin, "GET", "/metrics").body;
        if (sample(metrics, "sluice_plugin_requests_total", {{"code", "400"}}) == 1) break;
        std::this_thread::sleep_for(50ms);
    }
    EXPECT_EQ(sample(metrics, "sluice_plugin_requests_total", {{"stage", "in"}, {"code", "202"}}), 1) << metrics;
    EXPECT_EQ(sample(metrics, "sluice_plugin_requests_total", {{"stage", "in"}, {"code", "400"}}), 1) << metrics;
    EXPECT_NE(metrics.find("# TYPE sluice_stage_call_duration_seconds histogram"), std::string::npos);
    EXPECT_NE(metrics.find("# TYPE sluice_stage_cpu_seconds_total counter"), std::string::npos);
    EXPECT_GT(sample(metrics, "sluice_stage_cpu_seconds_total", {{"stage", "gate"}}), 0) << "the gate checked 30 records";
    EXPECT_GT(sample(metrics, "process_resident_memory_bytes", {}), 0);
    EXPECT_EQ(sample(metrics, "sluice_pipeline_up", {{"pipeline", "svc"}}), 1);
    bj::object status = bj::parse(http(admin, "GET", "/status").body).as_object();
    EXPECT_EQ(status.at("status"), "running");
    EXPECT_EQ(stage_of(status, "gate").at("in").to_number<int64_t>(), 30);

    p.signal(SIGTERM);
    ProcessResult r = p.wait();
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.err.find("refused a request with 400: {\"error\":\"line 2: "), std::string::npos) << r.err;
    bj::object report = read_checked_report(dir / "report.json");
    for (const char *stage : {"in", "gate", "out"}) {
        const bj::object &s = stage_of(report, stage);
        for (const auto &[outcome, key] : std::vector<std::pair<std::string, std::string>>{
                 {"in", "in"}, {"out", "out"}, {"rejected", "rejected"}, {"failed", "errors"}})
            EXPECT_EQ(sample(metrics, "sluice_stage_records_total", {{"stage", stage}, {"outcome", outcome}}),
                      s.at(key).to_number<double>())
                << stage << " " << outcome;
    }
    EXPECT_EQ(stage_of(report, "gate").at("rejected").to_number<int64_t>(), 3);
    EXPECT_EQ(stage_of(report, "in").at("counters").at("requests{code=202}").to_number<int64_t>(), 1);
}

TEST(AdminEndpoint, WantsTheTokenWhenOneIsSet) {
    TempDir dir;
    std::string m = dir.write("m.json", R"({"name":"svc","admin":{"port":0,"token_env":"SVC_ADMIN_TOKEN"},"stages":[
      {"id":"in","kind":"extractor","plugin":"http","config":{"port":0}},
      {"id":"out","kind":"loader","plugin":"null"}]})");
    ::unsetenv("SVC_ADMIN_TOKEN");
    ProcessResult unset = run_sluice({"run", m});
    EXPECT_EQ(unset.exit_code, 2);
    EXPECT_NE(unset.err.find("m.json: /admin/token_env: environment variable SVC_ADMIN_TOKEN is not set"),
              std::string::npos)
        << unset.err;
    ::setenv("SVC_ADMIN_TOKEN", "s3cret", 1);
    ChildProcess p({sluice_binary(), "run", m});
    ::unsetenv("SVC_ADMIN_TOKEN");
    const int admin = port_after(p, "admin endpoint listening on http://127.0.0.1:");
    ASSERT_GT(admin, 0) << p.err_so_far();
    EXPECT_EQ(http(admin, "GET", "/metrics").status, 401);
    EXPECT_EQ(http(admin, "GET", "/metrics", "", "Bearer wrong").status, 401);
    EXPECT_EQ(http(admin, "GET", "/metrics", "", "Bearer s3cret").status, 200);
    p.signal(SIGTERM);
    EXPECT_EQ(p.wait().exit_code, 0);
}

// A tap shows what flows out of a stage; a reader that stops reading costs
// the pipeline nothing: the run ends with every record, taps or not.
TEST(Tap, ShowsRecordsAndAReaderThatStopsReadingNeverStallsThePipeline) {
    TempDir dir;
    std::string m = dir.write("m.json", R"({"name":"tapped","stages":[
      {"id":"in","kind":"extractor","plugin":"generate","config":{"count":1500000,"invalid_every":10}},
      {"id":"gate","kind":"validator","plugin":"rules","config":{"rules":[{"field":"amount","min":0}]}},
      {"id":"out","kind":"loader","plugin":"null","inputs":["gate.pass"]}]})");
    ChildProcess p({sluice_binary(), "run", m, "--admin", "127.0.0.1:0", "--report", dir / "report.json", "--quiet"});
    const int admin = port_after(p, "admin endpoint listening on http://127.0.0.1:");
    ASSERT_GT(admin, 0) << p.err_so_far();
    const std::string where = "127.0.0.1:" + std::to_string(admin);

    // A reader that asks and then never reads.
    Poco::Net::StreamSocket stalled(Poco::Net::SocketAddress("127.0.0.1", Poco::UInt16(admin)));
    std::string ask = "GET /tap?stage=in HTTP/1.1\r\nHost: x\r\n\r\n";
    stalled.sendBytes(ask.data(), int(ask.size()));

    ProcessResult tap = run_sluice({"tap", where, "gate.pass", "--limit", "5"});
    EXPECT_EQ(tap.exit_code, 0) << tap.err;
    std::istringstream lines(tap.out);
    int n = 0;
    for (std::string line; std::getline(lines, line); ++n) {
        bj::object record = bj::parse(line).as_object();
        EXPECT_GE(record.at("amount").to_number<double>(), 0) << "only what passed the gate: " << line;
    }
    EXPECT_EQ(n, 5) << tap.out;

    ProcessResult unknown = run_sluice({"tap", where, "nope"});
    EXPECT_EQ(unknown.exit_code, 1);
    EXPECT_NE(unknown.err.find("answered 404: {\"error\":\"no stage 'nope' in pipeline 'tapped'\"}"), std::string::npos)
        << unknown.err;
    ProcessResult loader = run_sluice({"tap", where, "out"});
    EXPECT_NE(loader.err.find("stage 'out' is a loader: it has no output"), std::string::npos) << loader.err;

    ProcessResult r = p.wait(std::chrono::seconds(300));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    bj::object report = read_checked_report(dir / "report.json");
    EXPECT_EQ(report.at("records").at("extracted").to_number<int64_t>(), 1500000);
    EXPECT_EQ(report.at("records").at("delivered").to_number<int64_t>(), 1350000);
    ProcessResult gone = run_sluice({"tap", where, "in"});
    EXPECT_EQ(gone.exit_code, 1);
    EXPECT_NE(gone.err.find("cannot reach the admin endpoint at " + where), std::string::npos) << gone.err;
}

// Each thing a stage needs is checked before anything is read: validate
// --check says so, and so does run (exit 2, nothing written).
TEST(Preflight, CatchesWhatEachStageNeedsBeforeAnythingIsRead) {
    TempDir dir;
    dir.write("in.ndjson", "{\"a\":1}\n");
    auto check = [&](const std::string &name, const std::string &stages) {
        std::string m = dir.write(name + ".json", R"({"name":")" + name + R"(","stages":[)" + stages + "]}");
        ProcessResult v = run_sluice({"validate", "--check", m});
        ProcessResult r = run_sluice({"run", m});
        EXPECT_EQ(r.exit_code, 2) << name << ": " << r.err;
        EXPECT_EQ(v.err, r.err) << name;
        return v;
    };
    const std::string gen = R"({"id":"in","kind":"extractor","plugin":"generate","config":{"count":1}})";
    const std::string out = R"({"id":"out","kind":"loader","plugin":"null"})";
    const std::string file_in = R"({"id":"in","kind":"extractor","plugin":"file","config":{"path":"in.ndjson"}})";
    struct Case {
        std::string name, stages, expected;
    };
    const std::vector<Case> cases = {
        {"no_input", R"({"id":"in","kind":"extractor","plugin":"file","config":{"path":"missing-*.ndjson"}},)" + out,
         "no_input.json: /stages/0/config/path: '" + (dir / "missing-*.ndjson") + "' matches no file"},
        {"no_out_dir", file_in + R"(,{"id":"out","kind":"loader","plugin":"file","config":{"path":"nodir/o.ndjson","create_dirs":false}})",
         "no_out_dir.json: /stages/1/config/path: directory " + (dir / "nodir") + " does not exist"},
        {"out_is_dir", file_in + R"(,{"id":"out","kind":"loader","plugin":"file","config":{"path":"."}})",
         "out_is_dir.json: /stages/1/config/path: " + dir.path() + "/. is a directory"},
        {"no_db", R"({"id":"in","kind":"extractor","plugin":"sqlite","config":{"path":"none.db","table":"t"}},)" + out,
         "no_db.json: /stages/0/config/path: " + (dir / "none.db") + " does not exist"},
        {"no_docs", R"({"id":"in","kind":"extractor","plugin":"documents","config":{"path":"docs"}},)" + out,
         "no_docs.json: /stages/0/config/path: " + (dir / "docs") + " is not a directory"},
        {"no_postgres", gen + R"(,{"id":"out","kind":"loader","plugin":"postgres","config":{"conninfo":"host=127.0.0.1 port=1 dbname=x","table":"t"}})",
         "no_postgres.json: /stages/1/config/conninfo: cannot connect to PostgreSQL: "},
        {"no_model", gen + R"(,{"id":"ai","kind":"enricher","plugin":"llm","config":{"base_url":"http://127.0.0.1:1","model":"m","prompt":"p"}},)" + out,
         "no_model.json: /stages/1/config/base_url: cannot connect to 127.0.0.1:1: Connection refused (is the model server running?)"},
        {"no_webhook", gen + R"(,{"id":"out","kind":"loader","plugin":"http","config":{"url":"http://127.0.0.1:1/hook"}})",
         "no_webhook.json: /stages/1/config/url: cannot connect to 127.0.0.1:1: Connection refused"},
    };
    for (const auto &c : cases) {
        ProcessResult v = check(c.name, c.stages);
        EXPECT_EQ(v.exit_code, 2) << c.name;
        EXPECT_NE(v.err.find(dir / c.expected), std::string::npos) << c.name << ": " << v.err;
        EXPECT_EQ(std::count(v.err.begin(), v.err.end(), '\n'), 1) << "one line: " << v.err;
    }
    EXPECT_FALSE(std::filesystem::exists(dir / "nodir"));

    // A sound pipeline is ready to run.
    std::string ok = dir.write("ok.json", R"({"name":"ok","stages":[)" + file_in +
                                              R"(,{"id":"out","kind":"loader","plugin":"file","config":{"path":"out/o.ndjson"}}]})");
    ProcessResult v = run_sluice({"validate", "--check", ok});
    EXPECT_EQ(v.exit_code, 0) << v.err;
    EXPECT_NE(v.out.find("is valid and ready to run"), std::string::npos);
    EXPECT_FALSE(std::filesystem::exists(dir / "out")) << "a check changes nothing";
    ProcessResult r = run_sluice({"run", ok});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.err.find("created the missing directory " + (dir / "out")), std::string::npos) << r.err;
}

TEST(Progress, ALineOnATerminalASummaryInALogNothingWhenQuiet) {
    TempDir dir;
    // Long enough for a few redraws, however fast the machine: 250 batches
    // that each wait 10 ms (about 2.5 s).
    std::string m = dir.write("m.json", R"({"name":"long","plugin_dirs":[")" + std::string(SLUICE_TEST_PLUGIN_DIR) +
                                            R"("],"stages":[
      {"id":"in","kind":"extractor","plugin":"generate","batch_size":1000,"config":{"count":250000}},
      {"id":"map","kind":"transformer","plugin":"map","config":{"set":{"x":1}}},
      {"id":"pace","kind":"transformer","plugin":"fault","batch_size":1000,"config":{"slow_ms":10}},
      {"id":"out","kind":"loader","plugin":"null"}]})");
    // Not a terminal (a pipe): no line redrawn in place.
    ProcessResult piped = run_sluice({"run", m, "--log-level", "info", "--progress-interval", "1"});
    ASSERT_EQ(piped.exit_code, 0) << piped.err;
    EXPECT_EQ(piped.err.find('\r'), std::string::npos);
    EXPECT_NE(piped.err.find("progress: 0:0"), std::string::npos) << "a summary at info: " << piped.err;
    ProcessResult quiet = run_sluice({"run", m, "--log-level", "info", "--progress-interval", "1", "--quiet"});
    EXPECT_EQ(quiet.err.find("progress:"), std::string::npos) << quiet.err;

    // On a terminal (script(1) gives it one): the line, redrawn.
    ProcessResult tty = ChildProcess({"/usr/bin/script", "-qec", sluice_binary() + " run " + m, "/dev/null"}).wait();
    ASSERT_EQ(tty.exit_code, 0) << tty.out << tty.err;
    EXPECT_NE(tty.out.find("\r\033[K0:0"), std::string::npos) << tty.out;
    EXPECT_NE(tty.out.find(" extracted, "), std::string::npos);
    EXPECT_NE(tty.out.find(" records/s, busiest: "), std::string::npos) << tty.out;
}

TEST(Logs, JsonLogsAreOneObjectPerLineNamingStagePluginAndRecord) {
    TempDir dir;
    std::string m = dir.write("m.json", R"({"name":"j","stages":[
      {"id":"in","kind":"extractor","plugin":"generate","config":{"count":100,"invalid_every":10}},
      {"id":"gate","kind":"validator","plugin":"rules","config":{"rules":[{"field":"amount","min":0}]}},
      {"id":"out","kind":"loader","plugin":"null","inputs":["gate.pass"]}]})");
    ProcessResult r = run_sluice({"run", m, "--log-format", "json"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    std::istringstream in(r.err);
    int lines = 0, rejected = 0;
    for (std::string line; std::getline(in, line); ++lines) {
        bj::object o = bj::parse(line).as_object(); // throws on anything that is not one JSON object
        EXPECT_TRUE(o.contains("time") && o.contains("level") && o.contains("message")) << line;
        if (o.contains("record") && o.at("stage") == "gate") {
            EXPECT_EQ(o.at("plugin"), "rules");
            EXPECT_EQ(o.at("level"), "warning");
            EXPECT_EQ(o.at("record").to_number<int64_t>() % 10, 0) << line;
            ++rejected;
        }
    }
    EXPECT_GT(lines, 0);
    EXPECT_EQ(rejected, 10) << r.err;
    ProcessResult bad = run_sluice({"run", m, "--log-format", "xml"});
    EXPECT_EQ(bad.exit_code, 2);
    EXPECT_NE(bad.err.find("--log-format: unknown format 'xml' (expected text or json)"), std::string::npos);
}
