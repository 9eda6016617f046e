// The Redis Streams connector end to end against a real redis-server: a
// consumer group whose entries are acknowledged only once delivered, a
// consumer that comes back, a dead consumer's entries claimed, poison
// entries dead-lettered, TLS and AUTH, the loader, and three workers of
// which one is killed.
#include "child_process.hpp"
#include "eventually.hpp"
#include "record_accounting.hpp"
#include "redis_server.hpp"
#include "temp_dir.hpp"

#include <boost/json.hpp>
#include <gtest/gtest.h>

#include <signal.h>

#include <chrono>
#include <cstdlib>
#include <functional>
#include <map>
#include <random>
#include <set>
#include <thread>

using namespace sluice::test;
using namespace std::chrono_literals;
namespace bj = boost::json;

namespace {

std::vector<std::string> numbered(int from, int to) {
    std::vector<std::string> p;
    for (int i = from; i < to; ++i) p.push_back("{\"n\":" + std::to_string(i) + "}");
    return p;
}

// The redis extractor stage reading stream "s" in group "g"; `config` and
// `stage` add members to its config and to the stage.
std::string extractor(const std::string &url, const std::string &config, const std::string &stage = "") {
    return R"({"id":"src","kind":"extractor","plugin":"redis")" + stage + R"(,"config":{"url":")" + url +
           R"(","stream":"s","group":"g")" + config + "}}";
}

// n -> how many times it is in the NDJSON file(s) (records {"n": N, ...}).
void count_n(const std::string &path, std::map<int64_t, int> &counts, std::map<int64_t, std::string> *ids = nullptr) {
    for (const std::string &line : read_lines(path)) {
        boost::system::error_code ec;
        bj::value v = bj::parse(line, ec);
        if (ec) continue; // a line cut by SIGKILL: its entry was never acknowledged
        int64_t n = v.at("n").to_number<int64_t>();
        ++counts[n];
        if (ids) (*ids)[n] = std::string(v.at("_meta").at("redis_id").as_string());
    }
}

int64_t stage_counter(const bj::object &report, const std::string &stage, const std::string &name) {
    const bj::object &s = stage_of(report, stage);
    const bj::value *c = s.if_contains("counters");
    if (!c || !c->as_object().contains(name)) return 0;
    return c->at(name).to_number<int64_t>();
}

} // namespace

class RedisStreams : public ::testing::Test {
protected:
    void SetUp() override {
        // Not a skip: packaging/install-deps.sh installs it, and a missing
        // server must not pass for a tested connector.
        ASSERT_TRUE(RedisServer::available()) << "redis-server is not installed (packaging/install-deps.sh)";
    }
};

TEST_F(RedisStreams, EntriesAreAcknowledgedOnlyOnceEveryDestinationHasThem) {
    RedisServer redis;
    redis.add_entries("s", numbered(0, 500));
    redis.add_entries("s", {"not json"});
    redis.command({"XADD", "s", "*", "other", "x"});
    TempDir dir;
    // The file loader makes its output durable only when it flushes: until
    // then nothing may be acknowledged, even the two unreadable entries
    // that went to the dead-letter file with them.
    std::string m = dir.write("m.json", R"({"name":"r","stages":[)" +
        extractor(redis.url(), R"(,"consumer":"c1","claim_idle_ms":0)",
                  R"(,"on_error":{"then":"dead_letter","dead_letter":"dlq"})") + R"(,
        {"id":"out","kind":"loader","plugin":"file","config":{"path":"out.ndjson"}},
        {"id":"dlq","kind":"loader","plugin":"file","config":{"path":"dead.ndjson"}}]})");
    ChildProcess child({sluice_binary(), "run", m, "--report", dir / "r.json"});
    ASSERT_TRUE(eventually([&] { return redis.group_info("s", "g", "entries-read") == 502; })) << child.err_so_far();
    std::this_thread::sleep_for(300ms);
    EXPECT_EQ(redis.pending_ids("s", "g").size(), 502u) << "acknowledged before the loader made them durable";
    child.signal(SIGTERM);
    ProcessResult r = child.wait(30s);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(redis.pending_ids("s", "g").size(), 0u) << "a graceful stop acknowledges what was delivered";
    EXPECT_EQ(read_lines(dir / "out.ndjson").size(), 500u);
    auto dead = read_lines(dir / "dead.ndjson");
    ASSERT_EQ(dead.size(), 2u);
    EXPECT_NE(dead[0].find("invalid JSON"), std::string::npos) << dead[0];
    EXPECT_NE(dead[1].find("has no field 'body' (fields: other)"), std::string::npos) << dead[1];
    bj::object report = read_checked_report(dir / "r.json");
    EXPECT_EQ(stage_counter(report, "src", "acknowledged"), 502);
}

TEST_F(RedisStreams, AConsumerThatComesBackReadsItsOwnPendingEntriesFirst) {
    RedisServer redis;
    redis.add_entries("s", numbered(0, 3000));
    TempDir dir;
    // First life: reads everything, delivers nothing (its loader makes its
    // file durable only at the end) and is killed.
    std::string first = dir.write("first.json", R"({"name":"r","stages":[)" +
        extractor(redis.url(), R"(,"consumer":"w1","claim_idle_ms":0)") + R"(,
        {"id":"out","kind":"loader","plugin":"file","config":{"path":"lost.ndjson"}}]})");
    {
        ChildProcess child({sluice_binary(), "run", first});
        ASSERT_TRUE(eventually([&] { return redis.pending_ids("s", "g", "w1").size() == 3000; })) << child.err_so_far();
        child.signal(SIGKILL);
        child.wait(10s);
    }
    // Second life, same consumer name, no claiming: its own pending entries
    // come first, then new ones.
    std::string second = dir.write("second.json", R"({"name":"r","stages":[)" +
        extractor(redis.url(), R"(,"consumer":"w1","claim_idle_ms":0)") + R"(,
        {"id":"out","kind":"loader","plugin":"file","config":{"path":"out.ndjson","append":true}}]})");
    ChildProcess child({sluice_binary(), "run", second, "--report", dir / "r.json"});
    ASSERT_TRUE(eventually([&] { return read_lines(dir / "out.ndjson").size() == 3000; })) << child.err_so_far();
    redis.add_entries("s", numbered(3000, 3010));
    ASSERT_TRUE(eventually([&] { return read_lines(dir / "out.ndjson").size() == 3010; })) << child.err_so_far();
    child.signal(SIGTERM);
    ProcessResult r = child.wait(30s);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    std::map<int64_t, int> counts;
    count_n(dir / "out.ndjson", counts);
    ASSERT_EQ(counts.size(), 3010u);
    for (const auto &[n, times] : counts) ASSERT_EQ(times, 1) << "entry " << n;
    EXPECT_EQ(redis.pending_ids("s", "g").size(), 0u);
    EXPECT_EQ(stage_counter(read_checked_report(dir / "r.json"), "src", "redelivered"), 3000);
}

TEST_F(RedisStreams, ADeadConsumersEntriesAreClaimedAndAPoisonEntryIsDeadLettered) {
    RedisServer redis;
    redis.command({"XGROUP", "CREATE", "s", "g", "0", "MKSTREAM"});
    redis.add_entries("s", numbered(0, 100));
    // A consumer read them all and died; one entry had already been
    // delivered four times (it kills whoever reads it).
    redis.command({"XREADGROUP", "GROUP", "g", "dead", "COUNT", "1000", "STREAMS", "s", ">"});
    std::vector<std::string> ids = redis.pending_ids("s", "g", "dead");
    ASSERT_EQ(ids.size(), 100u);
    redis.command({"XCLAIM", "s", "g", "dead", "0", ids[7], "RETRYCOUNT", "4"});
    TempDir dir;
    std::string m = dir.write("m.json", R"({"name":"r","stages":[)" +
        extractor(redis.url(), R"(,"consumer":"live","claim_idle_ms":300,"claim_interval_ms":100,"max_deliveries":3)",
                  R"(,"on_error":{"then":"dead_letter","dead_letter":"dlq"})") + R"(,
        {"id":"out","kind":"loader","plugin":"file","config":{"path":"out.ndjson","append":true}},
        {"id":"dlq","kind":"loader","plugin":"file","config":{"path":"dead.ndjson","append":true}}]})");
    ChildProcess child({sluice_binary(), "run", m, "--report", dir / "r.json", "--log-level", "info"});
    ASSERT_TRUE(eventually([&] { return redis.group_info("s", "g", "pending") == 0; })) << child.err_so_far();
    child.signal(SIGTERM);
    ProcessResult r = child.wait(30s);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    std::map<int64_t, int> counts;
    count_n(dir / "out.ndjson", counts);
    EXPECT_EQ(counts.size(), 99u);
    EXPECT_EQ(counts.count(7), 0u);
    auto dead = read_lines(dir / "dead.ndjson");
    ASSERT_EQ(dead.size(), 1u);
    EXPECT_NE(dead[0].find("entry " + ids[7] + " of redis://127.0.0.1:"), std::string::npos) << dead[0];
    EXPECT_NE(dead[0].find("was delivered 5 times (max_deliveries 3)"), std::string::npos) << dead[0];
    EXPECT_EQ(bj::parse(dead[0]).at("record").at("n").to_number<int64_t>(), 7);
    bj::object report = read_checked_report(dir / "r.json");
    EXPECT_EQ(stage_counter(report, "src", "claimed"), 100);
    EXPECT_EQ(stage_counter(report, "src", "dead_lettered"), 1);
    EXPECT_NE(r.err.find("claimed 100 entries pending longer than 300 ms"), std::string::npos) << r.err;
}

TEST_F(RedisStreams, TlsAndAuthWithThePasswordFromTheEnvironment) {
    RedisServer redis({.password = "s3cret-pw", .tls = true, .maxmemory = ""});
    redis.add_entries("s", numbered(0, 200));
    TempDir dir;
    auto manifest = [&](const std::string &name, bool with_ca) {
        std::string auth = R"(,"password":"${SLUICE_TEST_REDIS_PASSWORD}")";
        if (with_ca) auth += R"(,"ca_file":")" + redis.ca_file() + "\"";
        return dir.write(name, R"({"name":"r","stages":[)" + extractor(redis.tls_url(), auth + R"(,"consumer":"c")") +
                                   R"(,{"id":"copy","kind":"loader","plugin":"redis","config":{"url":")" +
                                   redis.tls_url() + R"(","stream":"copy")" + auth + "}}]}");
    };
    ::setenv("SLUICE_TEST_REDIS_PASSWORD", "s3cret-pw", 1);
    std::string m = manifest("m.json", true);
    ChildProcess child({sluice_binary(), "run", m, "--log-level", "debug"});
    ASSERT_TRUE(eventually([&] { return redis.integer({"XLEN", "copy"}) == 200; })) << child.err_so_far();
    ASSERT_TRUE(eventually([&] { return redis.group_info("s", "g", "pending") == 0; })) << child.err_so_far();
    child.signal(SIGTERM);
    ProcessResult r = child.wait(30s);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.err.find("s3cret-pw"), std::string::npos) << "the password showed in the log";

    // A wrong password and an untrusted certificate are refused before
    // anything is read, in one line naming the server.
    ::setenv("SLUICE_TEST_REDIS_PASSWORD", "wrong", 1);
    ProcessResult refused = run_sluice({"run", m});
    EXPECT_NE(refused.exit_code, 0);
    EXPECT_NE(refused.err.find(redis.tls_url() + "/0 refused the connection: WRONGPASS"), std::string::npos)
        << refused.err;
    ::setenv("SLUICE_TEST_REDIS_PASSWORD", "s3cret-pw", 1);
    ProcessResult untrusted = run_sluice({"run", manifest("no_ca.json", false)});
    EXPECT_NE(untrusted.exit_code, 0);
    EXPECT_NE(untrusted.err.find("cannot connect to " + redis.tls_url() + "/0"), std::string::npos) << untrusted.err;
    EXPECT_NE(untrusted.err.find("certificate verify failed"), std::string::npos) << untrusted.err;
    ::unsetenv("SLUICE_TEST_REDIS_PASSWORD");
}

TEST_F(RedisStreams, TheLoaderAddsAndTrimsAndSendsARecordItCannotWriteToTheErrorPath) {
    RedisServer redis;
    TempDir dir;
    std::string rows;
    for (int i = 0; i < 1000; ++i) rows += "{\"n\":" + std::to_string(i) + ",\"name\":\"x\",\"tags\":[1]}\n";
    rows += "{}\n"; // no member: no field for the entry
    dir.write("in.ndjson", rows);
    std::string m = dir.write("m.json", R"({"name":"l","stages":[
        {"id":"in","kind":"extractor","plugin":"file","config":{"path":"in.ndjson"}},
        {"id":"out","kind":"loader","plugin":"redis","batch_size":100,
         "on_error":{"then":"dead_letter","dead_letter":"dlq"},
         "config":{"url":")" + redis.url() + R"(","stream":"out","format":"fields","max_length":100}},
        {"id":"dlq","kind":"loader","plugin":"file","config":{"path":"dead.ndjson"}}]})");
    ProcessResult r = run_sluice({"run", m, "--report", dir / "r.json"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    long long length = redis.integer({"XLEN", "out"});
    EXPECT_GE(length, 100);
    EXPECT_LT(length, 1000) << "MAXLEN ~ 100 trims the stream";
    RedisReply last = redis.command({"XREVRANGE", "out", "+", "-", "COUNT", "1"});
    ASSERT_EQ(last->elements, 1u);
    const redisReply *fields = last->element[0]->element[1];
    ASSERT_EQ(fields->elements, 6u);
    EXPECT_STREQ(fields->element[1]->str, "999");
    EXPECT_STREQ(fields->element[3]->str, "x");
    EXPECT_STREQ(fields->element[5]->str, "[1]");
    auto dead = read_lines(dir / "dead.ndjson");
    ASSERT_EQ(dead.size(), 1u);
    EXPECT_NE(dead[0].find("an empty object makes no stream entry"), std::string::npos) << dead[0];
    EXPECT_EQ(stage_counter(read_checked_report(dir / "r.json"), "out", "added"), 1000);
}

TEST_F(RedisStreams, AServerOutOfMemoryFailsTheRunAndIsNeverARecordError) {
    RedisServer redis({.password = "", .tls = false, .maxmemory = "1"}); // below what it uses: no write fits
    TempDir dir;
    std::string rows;
    for (int i = 0; i < 100; ++i) rows += "{\"n\":" + std::to_string(i) + "}\n";
    dir.write("in.ndjson", rows);
    std::string m = dir.write("m.json", R"({"name":"l","state_dir":"st","stages":[
        {"id":"in","kind":"extractor","plugin":"file","config":{"path":"in.ndjson"}},
        {"id":"out","kind":"loader","plugin":"redis","retry_environment_ms":500,
         "on_error":{"then":"dead_letter","dead_letter":"dlq"},
         "config":{"url":")" + redis.url() + R"(","stream":"out"}},
        {"id":"dlq","kind":"loader","plugin":"file","config":{"path":"dead.ndjson"}}]})");
    ProcessResult r = run_sluice({"run", m, "--report", dir / "r.json"});
    EXPECT_EQ(r.exit_code, 1) << r.err;
    EXPECT_NE(r.err.find("XADD to redis://127.0.0.1:" + std::to_string(redis.port()) + "/0/out: OOM"),
              std::string::npos) << r.err;
    EXPECT_TRUE(read_lines(dir / "dead.ndjson").empty()) << "no record was dead-lettered for the server's state";
    bj::object report = read_checked_report(dir / "r.json");
    EXPECT_EQ(report.at("delivery").at("unacknowledged").to_number<int64_t>(), 100);
}

TEST_F(RedisStreams, AUrlThatCannotBeUsedIsRefusedByValidateNamingTheField) {
    TempDir dir;
    auto refused = [&](const std::string &config) {
        std::string m = dir.write("m.json", R"({"name":"r","stages":[
            {"id":"src","kind":"extractor","plugin":"redis","config":{"stream":"s","group":"g",)" + config + R"(}},
            {"id":"out","kind":"loader","plugin":"null","config":{}}]})");
        ProcessResult r = run_sluice({"validate", m});
        EXPECT_EQ(r.exit_code, 2) << r.err;
        return r.err;
    };
    EXPECT_NE(refused(R"("url":"redis://etl:hunter2@localhost:6379")")
                  .find("/stages/0/config: url: put the user in username and the password in password"),
              std::string::npos);
    EXPECT_NE(refused(R"("url":"http://localhost:6379")").find("url: expected redis://HOST:PORT/DB or rediss://"),
              std::string::npos);
    EXPECT_NE(refused(R"("url":"redis://localhost:6379/x")").find("url: the path must be a database number"),
              std::string::npos);
    EXPECT_NE(refused(R"("url":"redis://localhost","ca_file":"ca.pem")").find("ca_file: only used with a rediss:// url"),
              std::string::npos);
    EXPECT_NE(refused(R"("username":"etl")").find("username: a username needs a password"), std::string::npos);
}

TEST_F(RedisStreams, ValidateCheckFindsAKeyThatIsNotAStreamAndAServerThatDoesNotAnswer) {
    RedisServer redis;
    redis.command({"SET", "plain", "x"});
    TempDir dir;
    std::string m = dir.write("m.json", R"({"name":"r","stages":[
        {"id":"src","kind":"extractor","plugin":"redis","config":{"url":")" + redis.url() + R"(","stream":"plain","group":"g"}},
        {"id":"out","kind":"loader","plugin":"redis","config":{"url":"redis://127.0.0.1:1","stream":"copy"}}]})");
    ProcessResult r = run_sluice({"validate", m, "--check"});
    EXPECT_NE(r.exit_code, 0) << r.err;
    EXPECT_NE(r.err.find("/stages/0/config/stream: key plain holds a string, not a stream"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("/stages/1/config/url: cannot connect to redis://127.0.0.1:1/0"), std::string::npos) << r.err;
}

TEST_F(RedisStreams, ADryRunAcknowledgesNothing) {
    // A dry run loads nothing, so it must not tell the stream it did: what
    // it read stays pending and the next real run delivers it.
    RedisServer redis;
    redis.add_entries("s", numbered(0, 300));
    TempDir dir;
    std::string m = dir.write("m.json", R"({"name":"r","stages":[)" +
        extractor(redis.url(), R"(,"consumer":"c1","claim_idle_ms":0)") + R"(,
        {"id":"out","kind":"loader","plugin":"file","config":{"path":"out.ndjson","append":true}}]})");
    ProcessResult dry = run_sluice({"run", m, "--dry-run", "--limit", "100"});
    ASSERT_EQ(dry.exit_code, 0) << dry.err;
    EXPECT_EQ(redis.pending_ids("s", "g", "c1").size(), 100u) << "the dry run acknowledged what it only printed";
    ChildProcess real({sluice_binary(), "run", m, "--report", dir / "r.json"});
    ASSERT_TRUE(eventually([&] { return read_lines(dir / "out.ndjson").size() == 300; })) << real.err_so_far();
    real.signal(SIGTERM);
    ProcessResult r = real.wait(30s);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(redis.pending_ids("s", "g").size(), 0u);
    EXPECT_EQ(stage_counter(read_checked_report(dir / "r.json"), "src", "redelivered"), 100);
}
