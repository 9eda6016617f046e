// Nothing lost (issue 9): environment failures (a full disk, an unreadable
// input) fail the run without skipping or acknowledging anything, a failed
// run keeps what it delivered, and dead letters stay valid JSON that can be
// replayed. The disk-full tests mount a real tmpfs (root only).
#include "child_process.hpp"
#include "record_accounting.hpp"
#include "temp_dir.hpp"
#include "tmpfs_mount.hpp"

#include <sluice/dead_letter.hpp>

#include <boost/json.hpp>
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <filesystem>
#include <map>
#include <set>

using namespace sluice::test;
namespace bj = boost::json;

namespace {

std::string orders_ndjson(int n) {
    std::string rows;
    rows.reserve(size_t(n) * 60);
    for (int i = 0; i < n; ++i)
        rows += "{\"id\":" + std::to_string(i) + ",\"amount\":\"" + std::to_string(i % 1000) + ".5\",\"name\":\"customer " +
                std::to_string(i) + "\"}\n";
    return rows;
}

int64_t query_int(const std::string &db_path, const std::string &sql) {
    sqlite3 *db = nullptr;
    EXPECT_EQ(sqlite3_open_v2(db_path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr), SQLITE_OK);
    sqlite3_stmt *st = nullptr;
    EXPECT_EQ(sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr), SQLITE_OK) << sqlite3_errmsg(db);
    int64_t v = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : -1;
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

// How many times each "id" appears in an NDJSON file.
std::map<int64_t, int> id_counts(const std::string &path) {
    std::map<int64_t, int> counts;
    for (const std::string &line : read_lines(path))
        if (!line.empty()) counts[bj::parse(line).at("id").to_number<int64_t>()]++;
    return counts;
}

bj::object report_of(const std::string &path) { return bj::parse(read_file(path)).as_object(); }

} // namespace

// R1: 200k records into SQLite on a 5 MiB tmpfs. "database or disk is full"
// used to become a per-record error that the default policy skipped: exit 0,
// 109,888 records gone, and the rerun read nothing.
TEST(Integrity, ASqliteLoaderOnAFullDiskFailsTheRunAndTheRerunLoadsEverything) {
    TempDir dir;
    TmpfsMount disk(dir / "disk", 5 * 1024);
    if (!disk.mounted()) GTEST_SKIP() << disk.why_not();
    const int kRows = 200000;
    dir.write("in.ndjson", orders_ndjson(kRows));
    std::string m = dir.write("m.json", R"({"name":"full","state_dir":"state","defaults":{"retry_environment_ms":300},
  "stages":[
    {"id":"read","kind":"extractor","plugin":"file","config":{"path":"in.ndjson"}},
    {"id":"clean","kind":"transformer","plugin":"map","config":{"cast":{"amount":"float"}}},
    {"id":"load","kind":"loader","plugin":"sqlite","config":{"path":"disk/out.db","table":"orders",
      "create_table":true,"columns":[{"name":"id","type":"INTEGER"},{"name":"amount","type":"REAL"},{"name":"name","type":"TEXT"}],
      "mode":"upsert","key":["id"]}}]})");
    ProcessResult failed = run_sluice({"run", m, "--report", dir / "r1.json"});
    ASSERT_EQ(failed.exit_code, 1) << failed.err;
    bj::object r1 = report_of(dir / "r1.json");
    EXPECT_EQ(r1.at("status").as_string(), "failed");
    EXPECT_NE(std::string(r1.at("error").as_string()).find("disk is full"), std::string::npos) << r1.at("error");
    EXPECT_NE(failed.err.find("stage 'load' (loader sqlite) failed: "), std::string::npos) << failed.err;
    const int64_t saved = r1.at("delivery").at("acknowledged").to_number<int64_t>();
    EXPECT_LT(saved, kRows);

    ASSERT_TRUE(disk.grow(200 * 1024));
    ProcessResult again = run_sluice({"run", m, "--report", dir / "r2.json"});
    ASSERT_EQ(again.exit_code, 0) << again.err;
    bj::object r2 = read_checked_report(dir / "r2.json");
    EXPECT_EQ(r2.at("records").at("extracted").to_number<int64_t>(), kRows - saved)
        << "the rerun reads exactly what the failed run had not delivered";
    EXPECT_EQ(query_int(dir / "disk/out.db", "SELECT count(*) FROM orders"), kRows);
    EXPECT_EQ(query_int(dir / "disk/out.db", "SELECT count(*) FROM orders WHERE id >= 0 AND id < 200000"), kRows);
}

// R1, second half: the file loader appending on a full disk exited 1 but
// saved no state although 69,632 records had been acknowledged.
TEST(Integrity, AnAppendingFileLoaderOnAFullDiskKeepsWhatItDelivered) {
    TempDir dir;
    TmpfsMount disk(dir / "disk", 2 * 1024);
    if (!disk.mounted()) GTEST_SKIP() << disk.why_not();
    const int kRows = 200000;
    dir.write("in.ndjson", orders_ndjson(kRows));
    std::string m = dir.write("m.json", R"({"name":"full","state_dir":"state","defaults":{"retry_environment_ms":300},
  "stages":[
    {"id":"read","kind":"extractor","plugin":"file","config":{"path":"in.ndjson"}},
    {"id":"write","kind":"loader","plugin":"file","config":{"path":"disk/out.ndjson","append":true}}]})");
    ProcessResult failed = run_sluice({"run", m, "--report", dir / "r1.json"});
    ASSERT_EQ(failed.exit_code, 1) << failed.err;
    EXPECT_NE(failed.err.find("No space left on device"), std::string::npos) << failed.err;
    bj::object r1 = report_of(dir / "r1.json");
    const int64_t saved = r1.at("delivery").at("acknowledged").to_number<int64_t>();
    EXPECT_GT(saved, 0) << "what was written before the disk filled up stays delivered";
    auto first = id_counts(dir / "disk/out.ndjson");
    EXPECT_GE(int64_t(first.size()), saved);
    for (const auto &[id, n] : first) ASSERT_EQ(n, 1) << "id " << id << ": a torn or doubled write was left behind";

    ASSERT_TRUE(disk.grow(100 * 1024));
    ProcessResult again = run_sluice({"run", m, "--report", dir / "r2.json"});
    ASSERT_EQ(again.exit_code, 0) << again.err;
    read_checked_report(dir / "r2.json");
    auto counts = id_counts(dir / "disk/out.ndjson");
    ASSERT_EQ(counts.size(), size_t(kRows)) << "every record is in the output";
    for (const auto &[id, n] : counts)
        if (id < saved) {
            ASSERT_EQ(n, 1) << "id " << id << " was delivered by the first run, yet written again";
        }
}

// R6: an unreadable input (a directory matching the glob) was dead-lettered
// as an empty record, the run exited 0 and the "file" was saved as read: once
// fixed, the rerun read nothing.
TEST(Integrity, AnUnreadableInputFailsTheRunAndIsReadOnceItIsFixed) {
    TempDir dir;
    std::string a, c;
    for (int i = 0; i < 100; ++i) a += "{\"id\":" + std::to_string(i) + "}\n";
    for (int i = 200; i < 300; ++i) c += "{\"id\":" + std::to_string(i) + "}\n";
    dir.write("in/a.ndjson", a);
    std::filesystem::create_directories(dir / "in/b.ndjson");
    dir.write("in/c.ndjson", c);
    std::string m = dir.write("m.json", R"({"name":"unreadable","state_dir":"state","defaults":{"retry_environment_ms":200},
  "stages":[
    {"id":"read","kind":"extractor","plugin":"file","config":{"path":"in/*.ndjson"}},
    {"id":"write","kind":"loader","plugin":"file","config":{"path":"out.ndjson","append":true}}]})");
    // Checked before the run: nothing is read.
    ProcessResult refused = run_sluice({"run", m});
    ASSERT_EQ(refused.exit_code, 2) << refused.err;
    EXPECT_NE(refused.err.find("m.json: /stages/0/config/path: " + (dir / "in/b.ndjson") + " is a directory"),
              std::string::npos)
        << refused.err;
    EXPECT_FALSE(std::filesystem::exists(dir / "out.ndjson"));
    // And when it becomes unreadable after that check (here: the check is
    // skipped), the run fails on it without saving it as read.
    ProcessResult failed = run_sluice({"run", m, "--no-check", "--report", dir / "r1.json"});
    ASSERT_EQ(failed.exit_code, 1) << failed.err;
    EXPECT_NE(failed.err.find("b.ndjson:1: read error: Is a directory"), std::string::npos) << failed.err;
    EXPECT_EQ(id_counts(dir / "out.ndjson").size(), 100u);

    std::filesystem::remove(dir / "in/b.ndjson");
    std::string b;
    for (int i = 100; i < 200; ++i) b += "{\"id\":" + std::to_string(i) + "}\n";
    dir.write("in/b.ndjson", b);
    ProcessResult again = run_sluice({"run", m, "--report", dir / "r2.json"});
    ASSERT_EQ(again.exit_code, 0) << again.err;
    read_checked_report(dir / "r2.json");
    auto counts = id_counts(dir / "out.ndjson");
    EXPECT_EQ(counts.size(), 300u);
    for (const auto &[id, n] : counts) EXPECT_EQ(n, 1) << id;

    // allow_unreadable passes over it, with the error on the error path.
    TempDir other;
    other.write("in/a.ndjson", a);
    std::filesystem::create_directories(other / "in/b.ndjson");
    std::string allowed = other.write("m.json", R"({"name":"allowed","stages":[
    {"id":"read","kind":"extractor","plugin":"file","config":{"path":"in/*.ndjson","allow_unreadable":true}},
    {"id":"write","kind":"loader","plugin":"file","config":{"path":"out.ndjson"}}]})");
    ProcessResult passed = run_sluice({"run", allowed, "--report", other / "r.json"});
    EXPECT_EQ(passed.exit_code, 0) << passed.err;
    bj::object r = read_checked_report(other / "r.json");
    EXPECT_EQ(r.at("records").at("unreadable").to_number<int64_t>(), 1);
}

// R4: a dead letter held the raw bytes of a record that was not UTF-8, so
// the dead-letter file was itself invalid JSON that Sluice could not read.
TEST(Integrity, DeadLettersAreValidJsonAndCanBeReplayed) {
    TempDir dir;
    const std::string bad_line = "{\"id\":2,\"name\":\"caf\xE9\"}";
    dir.write("in.ndjson", "{\"id\":1,\"amount\":\"3\"}\n" + bad_line + "\n{\"id\":3,\"amount\":\"x\"}\n");
    dir.write("in.csv", "id,name\n4,\xff\xfe\n5,ok\n");
    std::string m = dir.write("m.json", R"({"name":"dlq",
  "defaults":{"on_error":{"then":"dead_letter","dead_letter":"dlq"}},
  "stages":[
    {"id":"nd","kind":"extractor","plugin":"file","config":{"path":"in.ndjson"}},
    {"id":"csv","kind":"extractor","plugin":"file","config":{"path":"in.csv"}},
    {"id":"clean","kind":"transformer","plugin":"map","inputs":["nd","csv"],"config":{"cast":{"amount":"int"}}},
    {"id":"out","kind":"loader","plugin":"file","inputs":["clean"],"config":{"path":"out.ndjson"}},
    {"id":"dlq","kind":"loader","plugin":"file","on_error":"fail","config":{"path":"dlq.ndjson"}}]})");
    ProcessResult r = run_sluice({"run", m});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    std::vector<std::string> letters = read_lines(dir / "dlq.ndjson");
    ASSERT_EQ(letters.size(), 3u);
    std::set<std::string> raw_records;
    for (const std::string &l : letters) {
        boost::system::error_code ec;
        bj::value v = bj::parse(l, ec);
        ASSERT_FALSE(ec) << "a dead letter is not valid JSON: " << l;
        std::string problem;
        auto letter = sluice::dead_letter::read(l, problem);
        ASSERT_TRUE(letter) << problem;
        if (v.at("kind") == "unreadable") {
            EXPECT_TRUE(v.at("record_base64").as_bool()) << l;
            raw_records.insert(letter->payload);
        } else {
            EXPECT_EQ(letter->payload, R"({"id":3,"amount":"x"})");
        }
    }
    EXPECT_EQ(raw_records, (std::set<std::string>{bad_line, "4,\xff\xfe\n"})) << "the exact bytes survive";

    // Replayed through the file extractor: the record that failed on its
    // value comes out as it was; the ones that are not UTF-8 fail again.
    std::string replay = dir.write("replay.json", R"({"name":"replay","stages":[
    {"id":"again","kind":"extractor","plugin":"file","config":{"path":"dlq.ndjson","unwrap_dead_letters":true}},
    {"id":"out","kind":"loader","plugin":"file","config":{"path":"replayed.ndjson"}}]})");
    ProcessResult rr = run_sluice({"run", replay, "--report", dir / "rr.json"});
    ASSERT_EQ(rr.exit_code, 0) << rr.err;
    EXPECT_EQ(read_lines(dir / "replayed.ndjson"), std::vector<std::string>{R"({"id":3,"amount":"x"})"});
    EXPECT_EQ(read_checked_report(dir / "rr.json").at("records").at("unreadable").to_number<int64_t>(), 2);
}

namespace {
// Peak RSS in MB of `sluice run m`, which must succeed.
int64_t peak_rss_mb(const std::string &m) {
    ProcessResult r;
    int64_t peak = sluice_peak_rss_mb({"run", m}, r);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_GE(peak, 0) << r.err;
    return peak;
}
} // namespace

// R7: 2M records with batch_size 1,000,000 reached 967 MB: each of threads,
// queue_capacity and batch_size had its cap but their product was never
// checked. The budget now holds it, and validate says so.
TEST(MemoryBudget, HugeBatchesStayWithinTheBudget) {
    TempDir dir;
    std::string m = dir.write("m.json", R"({"name":"huge","memory_limit_mb":64,"stages":[
 {"id":"gen","kind":"extractor","plugin":"generate","batch_size":1000000,"config":{"count":1000000}},
 {"id":"map","kind":"transformer","plugin":"map","batch_size":1000000,"config":{"rename":{"user":"user_id"}}},
 {"id":"out","kind":"loader","plugin":"null","batch_size":1000000}]})");
    ProcessResult v = run_sluice({"validate", m});
    EXPECT_EQ(v.exit_code, 0) << v.err;
    EXPECT_NE(v.err.find("/stages/0/batch_size: up to 28 batches of 1000000 records may be in flight from extractor "
                         "'gen'"),
              std::string::npos)
        << v.err;
    EXPECT_NE(v.err.find("more than memory_limit_mb (64); extraction will pause at the budget and pulls are cut to "
                         "about 16384 records"),
              std::string::npos)
        << v.err;
    ProcessResult r = run_sluice({"run", m, "--report", dir / "r.json"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    bj::object report = read_checked_report(dir / "r.json");
    EXPECT_EQ(report.at("records").at("loaded").to_number<int64_t>(), 1000000);
    EXPECT_LT(report.at("memory").at("peak_batch_mb").to_number<double>(), 64 * 1.25);
    if (kAddressSanitized) GTEST_SKIP() << "AddressSanitizer's shadow memory makes RSS meaningless";
    EXPECT_LT(peak_rss_mb(m), 64 + 50) << "the budget plus a fixed overhead";
}

// R7: threads 256 on every stage let the ordered loader's reorder buffer
// grow to 765 batches against a queue capacity of 8.
TEST(MemoryBudget, ManyThreadsAndAReorderBufferStayWithinTheBudget) {
    TempDir dir;
    std::string m = dir.write("m.json", R"({"name":"threads","memory_limit_mb":64,"defaults":{"threads":256},"stages":[
 {"id":"gen","kind":"extractor","plugin":"generate","threads":1,"config":{"count":1000000}},
 {"id":"map","kind":"transformer","plugin":"map","config":{"rename":{"user":"user_id"}}},
 {"id":"rules","kind":"validator","plugin":"rules","config":{"rules":[{"field":"id","required":true}]}},
 {"id":"out","kind":"loader","plugin":"file","threads":1,"config":{"path":"out.ndjson","append":true}}]})");
    ProcessResult r = run_sluice({"run", m, "--report", dir / "r.json"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    bj::object report = read_checked_report(dir / "r.json");
    EXPECT_EQ(report.at("records").at("loaded").to_number<int64_t>(), 1000000);
    EXPECT_LT(report.at("memory").at("peak_batch_mb").to_number<double>(), 64 * 1.25);
    std::filesystem::remove(dir / "out.ndjson");
    if (kAddressSanitized) GTEST_SKIP() << "AddressSanitizer's shadow memory makes RSS meaningless";
    EXPECT_LT(peak_rss_mb(m), 64 + 100) << "the budget plus a fixed overhead (512 worker threads' stacks and plugin instances)";
}

// R8: a loader whose path was the extractor's own input overwrote it (15
// rows became 9) with exit 0. validate (and run) now refuse it.
TEST(Integrity, ALoaderThatWritesWhatAnExtractorReadsIsRefused) {
    TempDir dir;
    std::string csv = "id,name\n";
    for (int i = 1; i <= 15; ++i) csv += std::to_string(i) + ",n" + std::to_string(i) + "\n";
    dir.write("data/orders.csv", csv);
    std::filesystem::create_directory_symlink(dir / "data", dir / "alias");
    struct Case {
        std::string write_path;
        bool append;
    };
    for (const Case &c : {Case{"data/orders.csv", false}, Case{"alias/orders.csv", true}, Case{"data/more.csv", true}}) {
        std::string m = dir.write("m.json", R"({"name":"self","stages":[
  {"id":"read","kind":"extractor","plugin":"file","config":{"path":"data/*.csv"}},
  {"id":"write","kind":"loader","plugin":"file","config":{"path":")" + c.write_path + R"(","append":)" +
                                                 (c.append ? "true" : "false") + "}}]}");
        ProcessResult v = run_sluice({"validate", m});
        EXPECT_EQ(v.exit_code, 2) << c.write_path << ": " << v.out << v.err;
        EXPECT_NE(v.err.find(m + ": /stages/1/config/path: loader 'write' writes file://"), std::string::npos) << v.err;
        EXPECT_NE(v.err.find("which extractor 'read' reads (/stages/0/config/path: file://"), std::string::npos) << v.err;
        EXPECT_NE(v.err.find("the run would overwrite its own input"), std::string::npos) << v.err;
        ProcessResult r = run_sluice({"run", m});
        EXPECT_EQ(r.exit_code, 2) << r.err;
        EXPECT_EQ(read_file(dir / "data/orders.csv"), csv) << "the input is untouched";
        EXPECT_FALSE(std::filesystem::exists(dir / "data/more.csv"));
    }
    // Elsewhere is fine.
    std::string ok = dir.write("m.json", R"({"name":"self","stages":[
  {"id":"read","kind":"extractor","plugin":"file","config":{"path":"data/*.csv"}},
  {"id":"write","kind":"loader","plugin":"file","config":{"path":"out/orders.ndjson"}}]})");
    EXPECT_EQ(run_sluice({"validate", ok}).exit_code, 0);
}

TEST(Integrity, ASqliteLoaderWritingTheTableItsExtractorReadsIsRefused) {
    TempDir dir;
    std::string m = dir.write("m.json", R"({"name":"self","stages":[
  {"id":"read","kind":"extractor","plugin":"sqlite","config":{"path":"db.sqlite","table":"orders"}},
  {"id":"write","kind":"loader","plugin":"sqlite","config":{"path":"./db.sqlite","table":"orders"}}]})");
    ProcessResult v = run_sluice({"validate", m});
    EXPECT_EQ(v.exit_code, 2) << v.out << v.err;
    EXPECT_NE(v.err.find("/stages/1/config/table: loader 'write' writes sqlite://"), std::string::npos) << v.err;
}
