// Commit windows: a loader whose calls each cost a commit
// (SLUICE_CAP_COMMIT_WINDOWS) and that falls behind its input takes the
// batches waiting in its queue in one call (one transaction), up to its
// commit_records; with commit_records 1, or without the capability, it gets
// one call per batch as before. Against the real databases: rows the
// database refuses inside a window fail alone (dead letters, the server's
// message) while the rest of the window loads, and a run killed with SIGKILL
// mid-window, three times, then run to the end, loses no record (at least
// once: the window's records are acknowledged only after its commit).
#include "child_process.hpp"
#include "destination_rows.hpp"
#include "eventually.hpp"
#include "postgres_server.hpp"
#include "record_accounting.hpp"
#include "temp_dir.hpp"

#include <boost/json.hpp>
#include <gtest/gtest.h>

#include <csignal>
#include <filesystem>
#include <random>
#include <set>
#include <thread>

using namespace sluice::test;
namespace bj = boost::json;
using namespace std::chrono_literals;

namespace {

struct SinkFigures {
    int64_t loaded = 0, calls = 0, max_call = 0;
};

// 20000 records in batches of 100 into a sink that takes 20 ms per call.
SinkFigures run_behind(const std::string &window) {
    TempDir dir;
    std::string m = dir.write("m.json", R"({"name":"window","plugin_dirs":[")" + std::string(SLUICE_TEST_PLUGIN_DIR) +
                                            R"("],"stages":[
      {"id":"in","kind":"extractor","plugin":"probe_source","batch_size":100,"config":{"count":20000}},
      {"id":"out","kind":"loader","plugin":"probe_commit_sink",)" + window + R"("config":{"batch_delay_ms":20,"durable":true}}]})");
    ProcessResult r = run_sluice({"run", m, "--report", dir / "r.json"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    bj::value report = bj::parse(read_file(dir / "r.json"));
    SinkFigures f;
    for (const auto &s : report.at("stages").as_array()) {
        if (s.at("id").as_string() != "out") continue;
        f.loaded = s.at("out").to_number<int64_t>();
        f.calls = s.at("counters").at("calls").to_number<int64_t>();
        f.max_call = s.at("counters").at("max_call_records").to_number<int64_t>();
    }
    return f;
}

} // namespace

TEST(CommitWindows, ALoaderBehindItsInputTakesTheWaitingBatchesInOneCall) {
    SinkFigures windowed = run_behind(R"("commit_records":2000,)");
    EXPECT_EQ(windowed.loaded, 20000);
    EXPECT_GT(windowed.max_call, 100) << "waiting batches joined the one taken";
    EXPECT_LE(windowed.max_call, 2000 + 100) << "up to about commit_records (the last batch may pass it)";
    EXPECT_LT(windowed.calls, 200 / 2) << windowed.calls << " calls for 200 batches";

    SinkFigures per_batch = run_behind(R"("commit_records":1,)");
    EXPECT_EQ(per_batch.loaded, 20000);
    EXPECT_EQ(per_batch.max_call, 100);
    EXPECT_EQ(per_batch.calls, 200);
}

TEST(CommitWindows, ALoaderThatDoesNotAskForThemGetsACallPerBatch) {
    TempDir dir;
    std::string m = dir.write("m.json", R"({"name":"window","plugin_dirs":[")" + std::string(SLUICE_TEST_PLUGIN_DIR) +
                                            R"("],"stages":[
      {"id":"in","kind":"extractor","plugin":"probe_source","batch_size":100,"config":{"count":3000}},
      {"id":"out","kind":"loader","plugin":"probe_sink","config":{"batch_delay_ms":10,"durable":true}}]})");
    ProcessResult r = run_sluice({"run", m, "--report", dir / "r.json"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    bj::value report = bj::parse(read_file(dir / "r.json"));
    EXPECT_EQ(report.at("stages").at(1).at("counters").at("calls").to_number<int64_t>(), 30);
    EXPECT_EQ(report.at("stages").at(1).at("counters").at("max_call_records").to_number<int64_t>(), 100);
}

TEST(CommitWindows, OnlyLoadersHaveThem) {
    TempDir dir;
    std::string m = dir.write("m.json", R"({"name":"window","stages":[
      {"id":"in","kind":"extractor","plugin":"generate","commit_records":10,"config":{"count":10}},
      {"id":"out","kind":"loader","plugin":"null","commit_bytes":0}]})");
    ProcessResult r = run_sluice({"validate", m});
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_NE(r.err.find(m + ": /stages/0/commit_records: commit windows are for loaders (the stage is not one)"),
              std::string::npos) << r.err;
    EXPECT_NE(r.err.find(m + ": /stages/1/commit_bytes: expected a positive integer"), std::string::npos) << r.err;
}

namespace {

constexpr int kRows = 40000;
constexpr int kBatch = 200;
bool refused(int id) { return id % 97 == 0; } // amount -1: the table's CHECK refuses it

std::string refusable_rows(bool with_refused = true) {
    std::string rows;
    for (int i = 0; i < kRows; ++i)
        rows += "{\"id\":" + std::to_string(i) + ",\"amount\":" +
                (with_refused && refused(i) ? "-1" : std::to_string(i % 50 + 1)) + "}\n";
    return rows;
}

// file (batches of 200) -> a paced transformer -> `loader`, whose windows
// wait up to 150 ms for more batches (so a window holds many batches and a
// kill lands inside one), refused rows dead-lettered to dead.ndjson
// (appended: acknowledged as written, so the source's checkpoint moves).
// Without dead letters (exactly_once) the loader delivers exactly once.
std::string windowed_manifest(const std::string &plugin, const std::string &config, bool exactly_once = false) {
    return R"({"name":"windows","plugin_dirs":[")" + std::string(SLUICE_TEST_PLUGIN_DIR) + R"("],"state_dir":"state",
  "stages":[
    {"id":"read","kind":"extractor","plugin":"file","batch_size":)" + std::to_string(kBatch) + R"(,"config":{"path":"in.ndjson"}},
    {"id":"work","kind":"transformer","plugin":"fault","config":{"slow_ms":5}},
    {"id":"write","kind":"loader","plugin":")" + plugin + R"(","commit_records":100000,"commit_interval_ms":150,)" +
           (exactly_once ? std::string() : R"("on_error":{"dead_letter":"dead"},)") + R"("config":)" + config + "}" +
           (exactly_once ? std::string()
                         : R"(,{"id":"dead","kind":"loader","plugin":"file","config":{"path":"dead.ndjson","append":true}})") +
           "]}";
}

// The ids in dead.ndjson, each with the error it carries.
std::map<int64_t, std::string> dead_letters(const TempDir &dir) {
    std::map<int64_t, std::string> out;
    if (!std::filesystem::exists(dir / "dead.ndjson")) return out;
    std::string all = read_file(dir / "dead.ndjson");
    size_t at = 0;
    while (at < all.size()) {
        const size_t end = all.find('\n', at);
        bj::value line = bj::parse(all.substr(at, end - at));
        out[line.at("record").at("id").to_number<int64_t>()] = std::string(line.at("error").as_string());
        at = end == std::string::npos ? all.size() : end + 1;
    }
    return out;
}

// One uninterrupted run: windows of many batches form, each refused row
// fails alone with the server's message, every other row is loaded once.
void expect_refused_rows_fail_alone(const TempDir &dir, const std::string &m, const std::string &message,
                                    const std::function<std::map<int64_t, int>()> &loaded) {
    ProcessResult r = run_sluice({"run", m, "--report", dir / "r.json"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    bj::object report = read_checked_report(dir / "r.json");
    EXPECT_EQ(report.at("delivery").at("at_least_once").as_array(), (bj::array{"write", "dead"}));
    const auto &read = stage_of(report, "read"), &write = stage_of(report, "write");
    const int64_t input_batches = read.at("batches").to_number<int64_t>();
    const int64_t windows = write.at("batches").to_number<int64_t>();
    EXPECT_GE(input_batches, kRows / kBatch);
    EXPECT_LT(windows * 4, input_batches) << "windows of several batches: " << windows << " calls for "
                                          << input_batches << " batches";
    std::map<int64_t, std::string> dead = dead_letters(dir);
    std::map<int64_t, int> rows = loaded();
    int refusals = 0;
    for (int i = 0; i < kRows; ++i) {
        if (refused(i)) {
            ++refusals;
            ASSERT_TRUE(dead.count(i)) << "refused row " << i << " is not among the dead letters";
            EXPECT_NE(dead[i].find(message), std::string::npos) << dead[i];
            EXPECT_EQ(rows.count(i), 0u) << i;
        } else {
            ASSERT_EQ(rows[i], 1) << "row " << i << " (in a window with refused rows) loaded " << rows[i] << " times";
        }
    }
    EXPECT_EQ(dead.size(), size_t(refusals));
    EXPECT_EQ(rows.size(), size_t(kRows - refusals));
    EXPECT_EQ(write.at("errors").to_number<int64_t>(), refusals);
}

// Killed three times at random points, then run to the end: every row is
// in the table or (refused) among the dead letters, at least once.
void expect_kills_lose_nothing(const TempDir &dir, const std::string &m, uint32_t seed,
                               const std::function<std::map<int64_t, int>()> &loaded, bool exactly_once = false) {
    std::mt19937 rng(seed);
    int killed = 0;
    for (int k = 0; k < 3; ++k) {
        ChildProcess child({sluice_binary(), "run", m, "--log-level", "info"});
        ASSERT_TRUE(child.wait_for_err(": running ")) << child.err_so_far();
        // Once a window has been committed, at a random point of the next.
        auto rows_in = [&] {
            int64_t n = 0;
            for (const auto &[id, times] : loaded()) n += times;
            return n;
        };
        const int64_t before = rows_in();
        EXPECT_TRUE(eventually([&] { return rows_in() > before; }, 30s)) << child.err_so_far();
        std::this_thread::sleep_for(std::chrono::milliseconds(std::uniform_int_distribution<int>(0, 300)(rng)));
        child.signal(SIGKILL);
        ProcessResult r = child.wait(20s);
        if (r.exit_code == 0) break;
        EXPECT_EQ(r.exit_code, 128 + SIGKILL) << r.err;
        ++killed;
    }
    EXPECT_GE(killed, 1) << "no kill landed while the run was under way: the test proved nothing";
    ProcessResult last = run_sluice({"run", m, "--report", dir / "r.json"});
    ASSERT_EQ(last.exit_code, 0) << last.err;
    bj::object report = read_checked_report(dir / "r.json");
    EXPECT_EQ(report.at("delivery").at("exactly_once").as_array().size(), exactly_once ? 1u : 0u);
    std::map<int64_t, std::string> dead = dead_letters(dir);
    std::map<int64_t, int> rows = loaded();
    int lost = 0, twice = 0;
    for (int i = 0; i < kRows; ++i) {
        if (!exactly_once && refused(i) ? !dead.count(i) : !rows.count(i)) ++lost;
        if (rows.count(i) && rows[i] > 1) twice += rows[i] - 1;
    }
    EXPECT_EQ(lost, 0) << "rows neither loaded nor dead-lettered after " << killed << " kills";
    if (exactly_once) {
        EXPECT_EQ(twice, 0) << "rows loaded twice by an exactly-once loader";
    }
    EXPECT_EQ(rows.size() + dead.size(), size_t(kRows)) << "ids that were never input";
    std::cout << killed << " kills: " << rows.size() << " rows, " << dead.size() << " dead letters, " << twice
              << " rows loaded again (at least once)\n";
}

// A server's table `items` (amount > 0 or refused) and the windowed
// manifest writing it.
std::string postgres_windowed(const PostgresServer &pg, const TempDir &dir, bool exactly_once = false) {
    pg.exec("CREATE TABLE items (id bigint, amount double precision CHECK (amount > 0))");
    return dir.write("m.json", windowed_manifest("postgres", R"({"conninfo":")" + pg.conninfo() + R"(","table":"items"})",
                                                 exactly_once));
}

const char *kSqliteConfig = R"json({"path":"out.db","table":"items","create_table":true,
    "columns":[{"name":"id","type":"INTEGER"},{"name":"amount","type":"REAL CHECK (amount > 0)"}]})json";

} // namespace

TEST(CommitWindows, PostgresRefusesRowsInsideAWindowAlone) {
    PostgresServer pg;
    TempDir dir;
    dir.write("in.ndjson", refusable_rows());
    std::string m = postgres_windowed(pg, dir);
    expect_refused_rows_fail_alone(dir, m, R"(postgres: new row for relation "items" violates check constraint)",
                                   [&] { return postgres_ids(pg); });
}

TEST(CommitWindows, SqliteRefusesRowsInsideAWindowAlone) {
    TempDir dir;
    dir.write("in.ndjson", refusable_rows());
    std::string m = dir.write("m.json", windowed_manifest("sqlite", kSqliteConfig));
    expect_refused_rows_fail_alone(dir, m, "sqlite: CHECK constraint failed: amount > 0",
                                   [&] { return sqlite_ids(dir / "out.db"); });
}

TEST(CommitWindows, PostgresKilledMidWindowThreeTimesLosesNothing) {
    PostgresServer pg;
    TempDir dir;
    dir.write("in.ndjson", refusable_rows());
    std::string m = postgres_windowed(pg, dir);
    expect_kills_lose_nothing(dir, m, 18001, [&] { return postgres_ids(pg); });
}

TEST(CommitWindows, SqliteKilledMidWindowThreeTimesLosesNothing) {
    TempDir dir;
    dir.write("in.ndjson", refusable_rows());
    std::string m = dir.write("m.json", windowed_manifest("sqlite", kSqliteConfig));
    expect_kills_lose_nothing(dir, m, 18002, [&] { return sqlite_ids(dir / "out.db"); });
}

// Exactly once: a window's marker covers every pull in it, stored in the
// window's transaction; pulls the destination holds are left out of windows.
void expect_exactly_once_windows(const TempDir &dir, const std::string &m,
                                 const std::function<std::map<int64_t, int>()> &loaded,
                                 const std::function<void()> &empty_destination, uint32_t seed) {
    ProcessResult r = run_sluice({"run", m, "--report", dir / "r.json"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    bj::object report = read_checked_report(dir / "r.json");
    EXPECT_EQ(report.at("delivery").at("exactly_once").as_array(), bj::array{"write"});
    const int64_t input_batches = stage_of(report, "read").at("batches").to_number<int64_t>();
    const int64_t windows = stage_of(report, "write").at("batches").to_number<int64_t>();
    EXPECT_LT(windows * 4, input_batches) << windows << " calls for " << input_batches << " batches";
    std::map<int64_t, int> rows = loaded();
    EXPECT_EQ(rows.size(), size_t(kRows));
    for (const auto &[id, times] : rows) ASSERT_EQ(times, 1) << id;
    // Again from nothing, killed three times.
    empty_destination();
    std::filesystem::remove_all(dir / "state");
    expect_kills_lose_nothing(dir, m, seed, loaded, true);
}

TEST(CommitWindows, PostgresExactlyOnceWindowsSurviveThreeKills) {
    PostgresServer pg;
    TempDir dir;
    dir.write("in.ndjson", refusable_rows(false));
    std::string m = postgres_windowed(pg, dir, true);
    expect_exactly_once_windows(
        dir, m, [&] { return postgres_ids(pg); }, [&] { pg.exec("TRUNCATE items; DELETE FROM sluice_markers"); }, 18003);
}

TEST(CommitWindows, SqliteExactlyOnceWindowsSurviveThreeKills) {
    TempDir dir;
    dir.write("in.ndjson", refusable_rows(false));
    std::string m = dir.write("m.json", windowed_manifest("sqlite", kSqliteConfig, true));
    expect_exactly_once_windows(
        dir, m, [&] { return sqlite_ids(dir / "out.db"); },
        [&] {
            for (const char *f : {"out.db", "out.db-wal", "out.db-shm"}) std::filesystem::remove(dir / f);
        },
        18004);
}

// threads: 2 gives the loader two workers, each with its own connections
// (two, taking turns: one commits while the other copies) committing its
// own windows (inserts, where order does not matter): every row once,
// written by all four (a column defaulting to the server process id tells
// them apart).
// An upsert, where order matters, is refused with threads above 1.
TEST(CommitWindows, PostgresWritesThroughOneConnectionPerThread) {
    PostgresServer pg;
    pg.exec("CREATE TABLE items (id bigint, amount double precision, pid int DEFAULT pg_backend_pid())");
    TempDir dir;
    dir.write("in.ndjson", refusable_rows(false));
    std::string m = dir.write("m.json", R"({"name":"threads","stages":[
      {"id":"read","kind":"extractor","plugin":"file","batch_size":500,"config":{"path":"in.ndjson"}},
      {"id":"write","kind":"loader","plugin":"postgres","threads":2,
       "config":{"conninfo":")" + pg.conninfo() + R"(","table":"items","columns":["id","amount"]}}]})");
    ProcessResult r = run_sluice({"run", m, "--report", dir / "r.json"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    bj::object report = read_checked_report(dir / "r.json");
    EXPECT_EQ(stage_of(report, "write").at("threads").to_number<int64_t>(), 2);
    std::map<int64_t, int> rows = postgres_ids(pg);
    EXPECT_EQ(rows.size(), size_t(kRows));
    for (const auto &[id, times] : rows) ASSERT_EQ(times, 1) << id;
    EXPECT_EQ(pg.scalar("SELECT count(DISTINCT pid) FROM items"), "4");

    std::string upsert = dir.write("u.json", R"({"name":"threads","stages":[
      {"id":"read","kind":"extractor","plugin":"file","config":{"path":"in.ndjson"}},
      {"id":"write","kind":"loader","plugin":"postgres","threads":2,
       "config":{"conninfo":")" + pg.conninfo() + R"(","table":"items","mode":"upsert","key":["id"]}}]})");
    ProcessResult refused = run_sluice({"validate", upsert});
    EXPECT_EQ(refused.exit_code, 2) << refused.err;
    EXPECT_NE(refused.err.find(upsert + ": /stages/1/config: mode: upsert needs the stage's threads at 1 (2 connections would apply "
                               "the updates of one key in any order)"),
              std::string::npos)
        << refused.err;
}

// A window waits commit_interval_ms for more batches, but not once the
// memory budget is spent: then the extractor waits for this window to be
// written and nothing more can come. 24 MB of records through a 16 MB
// budget with windows that would wait a minute: done in seconds, every
// record loaded, memory within the budget.
TEST(CommitWindows, AWindowStopsWaitingWhenTheMemoryBudgetIsSpent) {
    TempDir dir;
    std::string rows;
    const std::string filler(200, 'x');
    for (int i = 0; i < 100000; ++i) rows += "{\"id\":" + std::to_string(i) + ",\"f\":\"" + filler + "\"}\n";
    dir.write("in.ndjson", rows);
    std::string m = dir.write("m.json", R"({"name":"budget","memory_limit_mb":16,"stages":[
      {"id":"read","kind":"extractor","plugin":"file","config":{"path":"in.ndjson"}},
      {"id":"write","kind":"loader","plugin":"sqlite","commit_records":16777216,"commit_bytes":1073741824,
       "commit_interval_ms":60000,
       "config":{"path":"out.db","table":"items","create_table":true,"columns":[{"name":"id","type":"INTEGER"},{"name":"f","type":"TEXT"}]}}]})");
    ProcessResult r = run_sluice({"run", m, "--report", dir / "r.json"}, std::chrono::seconds(50));
    ASSERT_EQ(r.exit_code, 0) << "a window waited for input that the spent budget held back\n" << r.err;
    bj::object report = read_checked_report(dir / "r.json");
    EXPECT_EQ(stage_of(report, "write").at("out").to_number<int64_t>(), 100000);
    EXPECT_GT(stage_of(report, "write").at("batches").to_number<int64_t>(), 1) << "the budget cut the windows";
    EXPECT_EQ(sqlite_ids(dir / "out.db").size(), 100000u);
}
