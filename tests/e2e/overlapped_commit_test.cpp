// Overlapped commits (sluice.settle/1): a loader whose commit of one call
// runs while the next call writes. The host acknowledges a call's records
// only once a later call has returned or the loader has settled: an HTTP
// client is answered once its records are committed (the host settles an
// idle loader rather than waiting for more input), and a commit that fails
// after its call returned stops the run with none of its records
// acknowledged, so a restart loads them. The PostgreSQL loader does this
// with two connections; here against the real server too.
#include "child_process.hpp"
#include "destination_rows.hpp"
#include "free_port.hpp"
#include "http_client.hpp"
#include "postgres_server.hpp"
#include "temp_dir.hpp"

#include <boost/json.hpp>
#include <gtest/gtest.h>

#include <csignal>
#include <filesystem>
#include <set>

using namespace sluice::test;
namespace bj = boost::json;
using namespace std::chrono_literals;

namespace {

const std::string kTestPlugins = SLUICE_TEST_PLUGIN_DIR;

// The "n" of each line of an NDJSON file (missing file: none).
std::multiset<int64_t> ns_in(const std::string &path) {
    std::multiset<int64_t> ns;
    if (!std::filesystem::exists(path)) return ns;
    for (const std::string &line : read_lines(path))
        if (!line.empty()) ns.insert(bj::parse(line).at("n").to_number<int64_t>());
    return ns;
}

// `count` records {"n": i} as NDJSON.
std::string numbered(int from, int count) {
    std::string text;
    for (int i = from; i < from + count; ++i) text += "{\"n\":" + std::to_string(i) + "}\n";
    return text;
}

} // namespace

TEST(OverlappedCommits, AnHttpClientIsAnsweredOnlyOnceItsRecordsAreCommitted) {
    TempDir dir;
    const int port = free_loopback_port();
    std::string m = dir.write("m.json", R"({"name":"settle","plugin_dirs":[")" + kTestPlugins + R"("],"stages":[
      {"id":"in","kind":"extractor","plugin":"http","config":{"port":)" + std::to_string(port) + R"(}},
      {"id":"out","kind":"loader","plugin":"settling_sink","config":{"path":"out.ndjson"}}]})");
    ChildProcess sluice({sluice_binary(), "run", m, "--log-level", "info"});
    ASSERT_TRUE(sluice.wait_for_err("listening on")) << sluice.err_so_far();
    // Each post is one call whose commit waits for the next call or for
    // settle: with no next call coming, only settle can let the answer go.
    for (int round = 0; round < 3; ++round) {
        HttpReply r = http_request(port, "POST", "/ingest", numbered(round * 3, 3), {}, "application/x-ndjson");
        ASSERT_EQ(r.status, 202) << r.body;
        EXPECT_EQ(ns_in(dir / "out.ndjson").size(), size_t(round + 1) * 3)
            << "answered before its records were committed (round " << round << ")";
    }
    sluice.signal(SIGTERM);
    EXPECT_EQ(sluice.wait(30s).exit_code, 0) << sluice.err_so_far();
    EXPECT_EQ(ns_in(dir / "out.ndjson"), (std::multiset<int64_t>{0, 1, 2, 3, 4, 5, 6, 7, 8}));
}

TEST(OverlappedCommits, ACommitThatFailsAfterItsCallReturnedAcknowledgesNoneOfItsRecords) {
    TempDir dir;
    dir.write("in.ndjson", numbered(0, 2000));
    auto manifest = [&](const std::string &sink_config) {
        return dir.write("m.json", R"({"name":"settle","plugin_dirs":[")" + kTestPlugins + R"("],
          "state_dir":"state","checkpoint_interval_ms":20,"stages":[
          {"id":"in","kind":"extractor","plugin":"file","batch_size":100,"config":{"path":"in.ndjson"}},
          {"id":"out","kind":"loader","plugin":"settling_sink","config":)" + sink_config + "}]}");
    };
    // The commit of the 7th call fails when the 8th call (or settle) looks
    // at it: the run stops.
    ProcessResult failed = run_sluice({"run", manifest(R"({"path":"out.ndjson","fail_commit_of_call":7})")});
    ASSERT_NE(failed.exit_code, 0) << failed.err;
    EXPECT_NE(failed.err.find("the commit of call 7 failed"), std::string::npos) << failed.err;
    std::multiset<int64_t> first = ns_in(dir / "out.ndjson");
    EXPECT_EQ(first.size(), 600u) << "six calls of 100 committed";
    // Run again: what the state says was delivered is skipped; the rest,
    // the 7th call's records among them, is loaded now.
    ProcessResult again = run_sluice({"run", manifest(R"({"path":"out.ndjson"})")});
    ASSERT_EQ(again.exit_code, 0) << again.err;
    std::multiset<int64_t> all = ns_in(dir / "out.ndjson");
    for (int64_t n = 0; n < 2000; ++n)
        ASSERT_GE(all.count(n), 1u) << "record " << n << " was acknowledged but never committed";
    for (int64_t n = 0; n < 600; ++n)
        EXPECT_EQ(all.count(n), 1u) << "record " << n << " was committed and acknowledged, yet loaded again";
}

TEST(OverlappedCommits, APostgresCommitFailingAfterItsWindowWasHandedOverLosesNothing) {
    PostgresServer pg;
    // A unique key checked only at COMMIT: the window holding the second
    // id 1500 passes COPY and fails when its COMMIT (sent without waiting)
    // is answered, after its call returned.
    pg.exec("CREATE TABLE items (id bigint, CONSTRAINT once UNIQUE (id) DEFERRABLE INITIALLY DEFERRED)");
    TempDir dir;
    std::string rows;
    for (int i = 0; i < 4000; ++i) {
        rows += "{\"id\":" + std::to_string(i) + "}\n";
        if (i == 2999) rows += "{\"id\":1500}\n";
    }
    dir.write("in.ndjson", rows);
    std::string m = dir.write("m.json", R"({"name":"pgsettle","state_dir":"state","checkpoint_interval_ms":20,"stages":[
      {"id":"in","kind":"extractor","plugin":"file","batch_size":250,"config":{"path":"in.ndjson"}},
      {"id":"out","kind":"loader","plugin":"postgres","commit_records":1,"config":{"conninfo":")" + pg.conninfo() +
                                                R"(","table":"items"}}]})");
    ProcessResult failed = run_sluice({"run", m});
    ASSERT_NE(failed.exit_code, 0) << failed.err;
    EXPECT_NE(failed.err.find("the COMMIT of a window already handed over failed: duplicate key value violates "
                              "unique constraint \"once\""),
              std::string::npos)
        << failed.err;
    // The twelve windows before the failing one committed; the one after
    // it, which found the failure, did not.
    EXPECT_EQ(pg.scalar("SELECT count(*) FROM items"), "3000");
    // Without the duplicate the rest goes in: nothing is missing.
    pg.exec("ALTER TABLE items DROP CONSTRAINT once");
    ProcessResult again = run_sluice({"run", m});
    ASSERT_EQ(again.exit_code, 0) << again.err;
    std::map<int64_t, int> ids = postgres_ids(pg);
    for (int64_t id = 0; id < 4000; ++id) ASSERT_GE(ids[id], 1) << "record " << id << " was lost";
}
