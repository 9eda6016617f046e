// Exactly once (issue 9, D3 and D8): a pipeline killed with SIGKILL at random
// points, three times, then run to the end, leaves every record in the
// destination exactly once, for the appending file loader, SQLite and
// PostgreSQL (plain inserts, no key to hide duplicates). Ids are checked one
// by one.
#include "child_process.hpp"
#include "destination_rows.hpp"
#include "postgres_server.hpp"
#include "record_accounting.hpp"
#include "temp_dir.hpp"

#include <boost/json.hpp>
#include <gtest/gtest.h>

#include <csignal>
#include <iostream>
#include <map>
#include <random>
#include <thread>

using namespace sluice::test;
namespace bj = boost::json;
using namespace std::chrono_literals;

namespace {

const std::string kTestPlugins = SLUICE_TEST_PLUGIN_DIR;
constexpr int kRows = 200000;

std::string input_rows(int from = 0, int to = kRows) {
    std::string rows;
    rows.reserve(size_t(to - from) * 48);
    for (int i = from; i < to; ++i) rows += "{\"id\":" + std::to_string(i) + ",\"name\":\"n" + std::to_string(i) + "\"}\n";
    return rows;
}

// The manifest: file -> a slowed transformer -> `loader`.
std::string manifest(const std::string &loader) {
    return R"({"name":"once","plugin_dirs":[")" + kTestPlugins + R"("],"state_dir":"state",
  "stages":[
    {"id":"read","kind":"extractor","plugin":"file","config":{"path":"in.ndjson"}},
    {"id":"work","kind":"transformer","plugin":"fault","config":{"slow_ms":4}},
    )" + loader + "]}";
}

// Runs `m` and kills it at a random point `kills` times, then runs it to
// the end. Returns the last run's report.
bj::object kill_and_finish(const TempDir &dir, const std::string &m, int kills, uint32_t seed) {
    std::mt19937 rng(seed);
    int killed = 0;
    for (int k = 0; k < kills; ++k) {
        ChildProcess child({sluice_binary(), "run", m, "--log-level", "info"});
        EXPECT_TRUE(child.wait_for_err(": running ")) << child.err_so_far();
        std::this_thread::sleep_for(std::chrono::milliseconds(std::uniform_int_distribution<int>(50, 500)(rng)));
        child.signal(SIGKILL);
        ProcessResult r = child.wait(20s);
        if (r.exit_code == 0) break; // finished before the kill: fine too
        EXPECT_EQ(r.exit_code, 128 + SIGKILL) << r.err;
        ++killed;
    }
    EXPECT_GE(killed, 1) << "no kill landed while the run was under way: the test proved nothing";
    ProcessResult last = run_sluice({"run", m, "--report", dir / "r.json"});
    EXPECT_EQ(last.exit_code, 0) << last.err;
    return read_checked_report(dir / "r.json");
}

// Fails the test for every id missing or present more than once.
void expect_each_id_once(const std::map<int64_t, int> &counts, const std::string &where) {
    int missing = 0, doubled = 0;
    for (int i = 0; i < kRows; ++i) {
        auto it = counts.find(i);
        if (it == counts.end()) ++missing;
        else if (it->second > 1) doubled += it->second - 1;
    }
    EXPECT_EQ(missing, 0) << where << ": records lost";
    EXPECT_EQ(doubled, 0) << where << ": records written more than once";
    EXPECT_EQ(counts.size(), size_t(kRows)) << where << ": ids that were never input";
    std::cout << where << ": " << counts.size() << " ids, " << missing << " missing, " << doubled << " duplicates\n";
}

uint64_t already_loaded(const bj::object &report, const std::string &stage) {
    for (const auto &s : report.at("stages").as_array())
        if (s.at("id").as_string() == stage) {
            const bj::object &c = s.at("counters").as_object();
            return c.contains("already_loaded") ? c.at("already_loaded").to_number<uint64_t>() : 0;
        }
    return 0;
}

} // namespace

TEST(ExactlyOnce, AnAppendingFileSurvivesThreeKills) {
    TempDir dir;
    dir.write("in.ndjson", input_rows());
    std::string m = dir.write("m.json", manifest(R"({"id":"write","kind":"loader","plugin":"file","config":{"path":"out.ndjson","append":true}})"));
    bj::object report = kill_and_finish(dir, m, 3, 9001);
    EXPECT_EQ(report.at("delivery").at("exactly_once").as_array(), bj::array{"write"});
    std::map<int64_t, int> counts;
    for (const std::string &line : read_lines(dir / "out.ndjson"))
        if (!line.empty()) counts[bj::parse(line).at("id").to_number<int64_t>()]++;
    expect_each_id_once(counts, "file");
    std::cout << "file: the last run skipped " << already_loaded(report, "write") << " records it had already\n";
}

TEST(ExactlyOnce, SqliteInsertsSurviveThreeKills) {
    TempDir dir;
    dir.write("in.ndjson", input_rows());
    std::string m = dir.write("m.json", manifest(R"({"id":"write","kind":"loader","plugin":"sqlite","config":{"path":"out.db","table":"items","create_table":true,"columns":[{"name":"id","type":"INTEGER"},{"name":"name","type":"TEXT"}]}})"));
    bj::object report = kill_and_finish(dir, m, 3, 9002);
    EXPECT_EQ(report.at("delivery").at("exactly_once").as_array(), bj::array{"write"});
    expect_each_id_once(sqlite_ids(dir / "out.db"), "sqlite");
}

TEST(ExactlyOnce, PostgresInsertsSurviveThreeKills) {
    PostgresServer pg;
    pg.exec("CREATE TABLE items (id bigint, name text)");
    TempDir dir;
    dir.write("in.ndjson", input_rows());
    std::string m = dir.write("m.json", manifest(R"({"id":"write","kind":"loader","plugin":"postgres","config":{"conninfo":")" +
                                                 pg.conninfo() + R"(","table":"items"}})"));
    bj::object report = kill_and_finish(dir, m, 3, 9003);
    EXPECT_EQ(report.at("delivery").at("exactly_once").as_array(), bj::array{"write"});
    EXPECT_EQ(pg.scalar("SELECT count(*) FROM items"), std::to_string(kRows));
    EXPECT_EQ(pg.scalar("SELECT count(DISTINCT id) FROM items"), std::to_string(kRows));
    EXPECT_EQ(pg.scalar("SELECT min(id) || '-' || max(id) FROM items"), "0-" + std::to_string(kRows - 1));
}

// durability: relaxed (synchronous_commit off in the loader's session) is
// about the server machine crashing; sluice killed at any point still loses
// and doubles nothing: what it acknowledged was committed.
TEST(ExactlyOnce, PostgresWithRelaxedDurabilitySurvivesThreeKillsOfSluice) {
    PostgresServer pg;
    pg.exec("CREATE TABLE items (id bigint, name text)");
    TempDir dir;
    dir.write("in.ndjson", input_rows());
    const std::string loader = R"({"id":"write","kind":"loader","plugin":"postgres","config":{"conninfo":")" +
                               pg.conninfo() + R"(","table":"items","durability":"relaxed"}})";
    std::string m = dir.write("m.json", manifest(loader));
    bj::object report = kill_and_finish(dir, m, 3, 9006);
    EXPECT_EQ(report.at("delivery").at("exactly_once").as_array(), bj::array{"write"});
    EXPECT_EQ(pg.scalar("SELECT count(*) FROM items"), std::to_string(kRows));
    EXPECT_EQ(pg.scalar("SELECT count(DISTINCT id) FROM items"), std::to_string(kRows));
    // The session really runs so (as the server says), and it is said.
    TempDir small;
    small.write("in.ndjson", input_rows(0, 10));
    pg.exec("TRUNCATE items; DELETE FROM sluice_markers"); // a new destination, as far as markers go
    ProcessResult r = run_sluice({"run", small.write("m.json", manifest(loader)), "--log-level", "info"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.err.find("durability relaxed: synchronous_commit is off for this loader's session"), std::string::npos)
        << r.err;
    EXPECT_EQ(pg.scalar("SELECT count(*) FROM items"), "10");
}

// Two extractor workers (two files shared out between them): the marker
// keeps each worker's last pull.
TEST(ExactlyOnce, IsolatedStagesSurviveThreeKillsOfTheHost) {
    // Every stage in worker processes: the workers die with the host, and
    // the loader's markers go through its worker (recover, process_marked,
    // sync_markers).
    TempDir dir;
    dir.write("in.ndjson", input_rows());
    std::string m = manifest(R"({"id":"write","kind":"loader","plugin":"sqlite","config":{"path":"out.db","table":"items","create_table":true,"columns":[{"name":"id","type":"INTEGER"},{"name":"name","type":"TEXT"}]}})");
    m.replace(m.find(R"("state_dir":"state",)"), 20, R"("state_dir":"state","defaults":{"isolation":"process"},)");
    m = dir.write("m.json", m);
    bj::object report = kill_and_finish(dir, m, 3, 9005);
    EXPECT_EQ(report.at("delivery").at("exactly_once").as_array(), bj::array{"write"});
    for (const auto &s : report.at("stages").as_array()) EXPECT_EQ(s.at("isolation").as_string(), "process");
    expect_each_id_once(sqlite_ids(dir / "out.db"), "sqlite, isolated");
}

TEST(ExactlyOnce, AnAppendingFileFedByTwoExtractorWorkersSurvivesThreeKills) {
    TempDir dir;
    dir.write("in/a.ndjson", input_rows(0, kRows / 2));
    dir.write("in/b.ndjson", input_rows(kRows / 2, kRows));
    std::string m = manifest(R"({"id":"write","kind":"loader","plugin":"file","config":{"path":"out.ndjson","append":true}})");
    m.replace(m.find(R"("config":{"path":"in.ndjson"})"), 29, R"("threads":2,"config":{"path":"in/*.ndjson"})");
    m = dir.write("m.json", m);
    bj::object report = kill_and_finish(dir, m, 3, 9004);
    EXPECT_EQ(report.at("delivery").at("exactly_once").as_array(), bj::array{"write"});
    std::map<int64_t, int> counts;
    for (const std::string &line : read_lines(dir / "out.ndjson"))
        if (!line.empty()) counts[bj::parse(line).at("id").to_number<int64_t>()]++;
    expect_each_id_once(counts, "file, two workers");
}

// The window a kill may or may not hit, made certain: the destination holds
// pulls the state does not know were delivered (a crash after the write and
// before the state was saved). The state of a moment in mid-run is put back
// after a complete run: the rerun reads those pulls again and the loader
// skips every one of them.
TEST(ExactlyOnce, PullsTheDestinationHoldsAreSkippedWhenReadAgain) {
    TempDir dir;
    dir.write("in.ndjson", input_rows());
    std::string m = manifest(R"({"id":"write","kind":"loader","plugin":"file","config":{"path":"out.ndjson","append":true}})");
    m.replace(m.find(R"("state_dir":"state",)"), 20, R"("state_dir":"state","checkpoint_interval_ms":0,)");
    m = dir.write("m.json", m);
    const std::string state = dir / "state/once.state.json";
    ChildProcess child({sluice_binary(), "run", m});
    std::string mid_run;
    auto deadline = std::chrono::steady_clock::now() + 30s;
    while (mid_run.empty() && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(5ms);
        std::string text = exists(state) ? read_file(state) : "";
        boost::system::error_code ec;
        bj::value v = bj::parse(text, ec);
        if (!ec && v.at("stages").at("read").at("workers").at(0).at("pulls").to_number<int64_t>() >= 50) mid_run = text;
    }
    ASSERT_EQ(child.wait(60s).exit_code, 0);
    ASSERT_FALSE(mid_run.empty()) << "the state never showed 50 pulls delivered";
    const int64_t delivered_then = bj::parse(mid_run).at("stages").at("read").at("workers").at(0).at("acknowledged").to_number<int64_t>();
    dir.write("state/once.state.json", mid_run);

    ProcessResult again = run_sluice({"run", m, "--report", dir / "r.json"});
    ASSERT_EQ(again.exit_code, 0) << again.err;
    bj::object report = read_checked_report(dir / "r.json");
    EXPECT_EQ(already_loaded(report, "write"), uint64_t(kRows - delivered_then));
    std::map<int64_t, int> counts;
    for (const std::string &line : read_lines(dir / "out.ndjson"))
        if (!line.empty()) counts[bj::parse(line).at("id").to_number<int64_t>()]++;
    expect_each_id_once(counts, "file, state put back");
}

// The same with commit windows and two extractor workers: a loader that
// takes windows (SQLite, waiting up to 100 ms for more batches) gets the
// pulls the destination holds interleaved with those it does not; the held
// ones are left out of every window and skipped, the others written once.
TEST(ExactlyOnce, WindowsLeaveOutThePullsTheDestinationHolds) {
    TempDir dir;
    dir.write("in/a.ndjson", input_rows(0, kRows / 2));
    dir.write("in/b.ndjson", input_rows(kRows / 2, kRows));
    std::string m = manifest(R"({"id":"write","kind":"loader","plugin":"sqlite","commit_interval_ms":100,
      "config":{"path":"out.db","table":"items","create_table":true,"columns":[{"name":"id","type":"INTEGER"},{"name":"name","type":"TEXT"}]}})");
    m.replace(m.find(R"("config":{"path":"in.ndjson"})"), 29, R"("threads":2,"config":{"path":"in/*.ndjson"})");
    m.replace(m.find(R"("state_dir":"state",)"), 20, R"("state_dir":"state","checkpoint_interval_ms":0,)");
    m = dir.write("m.json", m);
    const std::string state = dir / "state/once.state.json";
    // A first run, killed once both workers are well past the state kept.
    ChildProcess child({sluice_binary(), "run", m});
    std::string mid_run;
    auto pulls_of = [](const bj::value &v, int w) {
        return v.at("stages").at("read").at("workers").at(w).at("pulls").to_number<int64_t>();
    };
    auto deadline = std::chrono::steady_clock::now() + 30s;
    bool past = false;
    while (!past && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(5ms);
        std::string text = exists(state) ? read_file(state) : "";
        boost::system::error_code ec;
        bj::value v = bj::parse(text, ec);
        if (ec || v.at("stages").at("read").at("workers").as_array().size() != 2) continue;
        if (mid_run.empty() && pulls_of(v, 0) >= 10 && pulls_of(v, 1) >= 10) mid_run = text;
        past = pulls_of(v, 0) >= 40 && pulls_of(v, 1) >= 40;
    }
    child.signal(SIGKILL);
    ASSERT_EQ(child.wait(60s).exit_code, 128 + SIGKILL) << "finished before the kill: slow the run down";
    ASSERT_TRUE(past) << "the state never showed 40 pulls of each worker delivered";
    const int64_t held = int64_t(sqlite_ids(dir / "out.db").size());
    const bj::value then = bj::parse(mid_run);
    int64_t delivered_then = 0;
    for (int w = 0; w < 2; ++w)
        delivered_then += then.at("stages").at("read").at("workers").at(w).at("acknowledged").to_number<int64_t>();
    dir.write("state/once.state.json", mid_run);

    ProcessResult again = run_sluice({"run", m, "--report", dir / "r.json"});
    ASSERT_EQ(again.exit_code, 0) << again.err;
    bj::object report = read_checked_report(dir / "r.json");
    EXPECT_EQ(already_loaded(report, "write"), uint64_t(held - delivered_then));
    EXPECT_LT(stage_of(report, "write").at("batches").to_number<int64_t>() * 2,
              stage_of(report, "read").at("batches").to_number<int64_t>())
        << "windows of several batches";
    expect_each_id_once(sqlite_ids(dir / "out.db"), "sqlite windows, two workers, state put back");
}
