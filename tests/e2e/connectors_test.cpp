// Connectors end to end: SQLite as a destination and as an incremental
// source, and reading a large table in bounded memory.
#include "child_process.hpp"
#include "record_accounting.hpp"
#include "temp_dir.hpp"

#include <boost/json.hpp>
#include <gtest/gtest.h>

#include <sqlite3.h>

#include <filesystem>

using namespace sluice::test;
namespace bj = boost::json;

namespace {

int64_t scalar(const std::string &db, const std::string &query) {
    sqlite3 *h = nullptr;
    sqlite3_open(db.c_str(), &h);
    sqlite3_stmt *st = nullptr;
    int64_t v = -1;
    if (sqlite3_prepare_v2(h, query.c_str(), -1, &st, nullptr) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(h);
    return v;
}

} // namespace

TEST(Connectors, SqliteExamplesLoadUpsertAndReadOnlyNewRows) {
    TempDir dir;
    std::filesystem::copy(std::string(SLUICE_SOURCE_DIR) + "/pipelines", dir / "pipelines",
                          std::filesystem::copy_options::recursive);
    for (int run = 0; run < 2; ++run) { // the second run upserts the same orders: no duplicates
        ProcessResult r = run_sluice({"run", dir / "pipelines/orders_to_sqlite.json", "--report", dir / "r.json"});
        ASSERT_EQ(r.exit_code, 0) << r.err;
        bj::object rep = read_checked_report(dir / "r.json");
        EXPECT_EQ(scalar(dir / "out/orders.db", "SELECT count(*) FROM orders"), 16);
        EXPECT_EQ(read_lines(dir / "out/orders_to_sqlite/dead_letters.ndjson").size(), 2u) << "amounts the CHECK refuses";
    }
    ProcessResult first = run_sluice({"run", dir / "pipelines/sqlite_incremental.json", "--report", dir / "i1.json"});
    ASSERT_EQ(first.exit_code, 0) << first.err;
    EXPECT_EQ(read_lines(dir / "out/sqlite_incremental/orders.ndjson").size(), 16u);
    // New rows arrive; the next run reads just those.
    sqlite3 *h = nullptr;
    sqlite3_open((dir / "out/orders.db").c_str(), &h);
    sqlite3_exec(h, "INSERT INTO orders (order_id, email, amount) VALUES (9001, 'n@example.com', 5), "
                    "(9002, 'm@example.com', 6)",
                 nullptr, nullptr, nullptr);
    sqlite3_close(h);
    ProcessResult second = run_sluice({"run", dir / "pipelines/sqlite_incremental.json", "--report", dir / "i2.json"});
    ASSERT_EQ(second.exit_code, 0) << second.err;
    EXPECT_EQ(read_checked_report(dir / "i2.json").at("records").at("extracted").to_number<int64_t>(), 2);
    auto lines = read_lines(dir / "out/sqlite_incremental/orders.ndjson");
    ASSERT_EQ(lines.size(), 18u);
    EXPECT_EQ(bj::parse(lines.back()).at("order_id").as_int64(), 9002);
}

TEST(Connectors, ALargeTableIsReadInBoundedMemory) {
    TempDir dir;
    const std::string db = dir / "big.db";
    sqlite3 *h = nullptr;
    sqlite3_open(db.c_str(), &h);
    sqlite3_exec(h,
                 "CREATE TABLE t (id INTEGER PRIMARY KEY, payload TEXT);"
                 "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 400000) "
                 "INSERT INTO t SELECT i, printf('%0200d', i) FROM n;",
                 nullptr, nullptr, nullptr);
    sqlite3_close(h);
    ASSERT_GT(std::filesystem::file_size(db), 80u << 20) << "a table well above the memory bound";
    std::string m = dir.write("m.json", R"({"name":"big","stages":[
  {"id":"in","kind":"extractor","plugin":"sqlite","config":{"path":"big.db","table":"t"}},
  {"id":"out","kind":"loader","plugin":"null"}]})");
    ProcessResult r = run_sluice({"run", m, "--report", dir / "r.json"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    bj::object rep = read_checked_report(dir / "r.json");
    EXPECT_EQ(rep.at("records").at("extracted").to_number<int64_t>(), 400000);
    // Peak memory of the run, measured around the same command.
    ProcessResult timed = [&] {
        ChildProcess c({"/usr/bin/time", "-f", "peak_kb=%M", sluice_binary(), "run", m});
        return c.wait();
    }();
    ASSERT_EQ(timed.exit_code, 0) << timed.err;
    auto pos = timed.err.find("peak_kb=");
    ASSERT_NE(pos, std::string::npos) << timed.err;
    int64_t peak_mb = std::stoll(timed.err.substr(pos + 8)) / 1024;
    EXPECT_LT(peak_mb, 60) << "an 80+ MB table streamed through bounded queues";
}
