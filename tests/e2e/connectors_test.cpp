// Connectors end to end: SQLite as a destination and as an incremental
// source, and reading a large table in bounded memory.
#include "child_process.hpp"
#include "postgres_server.hpp"
#include "record_accounting.hpp"
#include "temp_dir.hpp"

#include <boost/json.hpp>
#include <gtest/gtest.h>

#include <sqlite3.h>

#include <filesystem>
#include <set>

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
    ProcessResult timed;
    int64_t peak_mb = sluice_peak_rss_mb({"run", m}, timed);
    ASSERT_EQ(timed.exit_code, 0) << timed.err;
    ASSERT_GE(peak_mb, 0) << timed.err;
    if (kAddressSanitized) GTEST_SKIP() << "AddressSanitizer's shadow memory makes RSS meaningless (" << peak_mb << " MB)";
    EXPECT_LT(peak_mb, 60) << "an 80+ MB table streamed through bounded queues";
}

TEST(Connectors, PostgresExampleLoadsSqliteAndPostgresAndReadsOnlyNewRows) {
    PostgresServer pg;
    // The schema and rows the README's instructions load.
    pg.exec(read_file(std::string(SLUICE_SOURCE_DIR) + "/pipelines/data/shop.sql"));
    TempDir dir;
    std::filesystem::copy(std::string(SLUICE_SOURCE_DIR) + "/pipelines", dir / "pipelines",
                          std::filesystem::copy_options::recursive);
    std::string m = read_file(dir / "pipelines/postgres_orders.json");
    for (size_t p; (p = m.find("postgresql://etl@localhost:5432/shop")) != std::string::npos;)
        m.replace(p, 36, pg.conninfo());
    dir.write("pipelines/postgres_orders.json", m);
    setenv("SHOP_DB_PASSWORD", "unused-with-trust-auth", 1);
    ProcessResult r = run_sluice({"run", dir / "pipelines/postgres_orders.json", "--report", dir / "r1.json"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    read_checked_report(dir / "r1.json");
    EXPECT_EQ(scalar(dir / "out/postgres_orders/orders.db", "SELECT count(*) FROM orders"), 2);
    EXPECT_EQ(pg.scalar("SELECT count(*) FROM reporting_orders"), "2");
    EXPECT_EQ(pg.scalar("SELECT country FROM reporting_orders WHERE order_id = 4"), "unknown");
    EXPECT_EQ(read_lines(dir / "out/postgres_orders/rejects.ndjson").size(), 2u);

    pg.exec("INSERT INTO orders (email, amount, country) VALUES ('d@example.com', 3, 'NL');");
    ProcessResult again = run_sluice({"run", dir / "pipelines/postgres_orders.json", "--report", dir / "r2.json"});
    unsetenv("SHOP_DB_PASSWORD");
    ASSERT_EQ(again.exit_code, 0) << again.err;
    EXPECT_EQ(read_checked_report(dir / "r2.json").at("records").at("extracted").to_number<int64_t>(), 1);
    EXPECT_EQ(pg.scalar("SELECT count(*) FROM reporting_orders"), "3");
    EXPECT_EQ(scalar(dir / "out/postgres_orders/orders.db", "SELECT count(*) FROM orders"), 3);
}

TEST(Connectors, ALargePostgresTableIsReadInBoundedMemory) {
    PostgresServer pg;
    pg.exec("CREATE TABLE big AS SELECT i AS id, lpad(i::text, 200, '0') AS payload FROM generate_series(1, 400000) i;");
    TempDir dir;
    std::string m = dir.write("m.json", R"({"name":"bigpg","stages":[
  {"id":"in","kind":"extractor","plugin":"postgres","config":{"conninfo":")" + pg.conninfo() + R"(","table":"big"}},
  {"id":"out","kind":"loader","plugin":"null"}]})");
    ProcessResult timed;
    int64_t peak_mb = sluice_peak_rss_mb({"run", m, "--report", dir / "r.json"}, timed);
    ASSERT_EQ(timed.exit_code, 0) << timed.err;
    EXPECT_EQ(read_checked_report(dir / "r.json").at("records").at("extracted").to_number<int64_t>(), 400000);
    ASSERT_GE(peak_mb, 0) << timed.err;
    if (kAddressSanitized) GTEST_SKIP() << "AddressSanitizer's shadow memory makes RSS meaningless";
    EXPECT_LT(peak_mb, 60) << "90 MB of rows through a server-side cursor";
}

TEST(Connectors, TheDocumentsExampleChunksAndEnrichesEveryDocument) {
    TempDir dir;
    std::filesystem::copy(std::string(SLUICE_SOURCE_DIR) + "/pipelines", dir / "pipelines",
                          std::filesystem::copy_options::recursive);
    dir.write("pipelines/data/docs/broken.pdf", "%PDF-1.4 not really");
    ProcessResult r = run_sluice({"run", dir / "pipelines/documents_text.json", "--report", dir / "r.json"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    read_checked_report(dir / "r.json");
    std::set<std::string> types;
    size_t chunks = 0;
    for (const auto &line : read_lines(dir / "out/documents_text/chunks.ndjson")) {
        bj::object o = bj::parse(line).as_object();
        types.insert(std::string(o.at("content_type").as_string()));
        EXPECT_TRUE(o.at("facts").as_object().contains("language")) << line;
        EXPECT_LE(o.at("text").as_string().size(), 220u) << "chunks of about 200 characters";
        ++chunks;
    }
    EXPECT_EQ(types, (std::set<std::string>{"application/pdf", "text/html", "text/markdown", "text/plain"}));
    EXPECT_GT(chunks, 4u) << "the longer documents are split";
    auto dead = read_lines(dir / "out/documents_text/unreadable.ndjson");
    ASSERT_EQ(dead.size(), 1u);
    EXPECT_NE(dead[0].find("application/pdf: not a readable PDF"), std::string::npos) << dead[0];

    // Two workers share the documents out: the same records, none twice.
    auto one = read_lines(dir / "out/documents_text/chunks.ndjson");
    std::string m = read_file(dir / "pipelines/documents_text.json");
    m.replace(m.find("\"plugin\": \"documents\","), 23, "\"plugin\": \"documents\", \"threads\": 2,");
    dir.write("pipelines/documents_text.json", m);
    ProcessResult two = run_sluice({"run", dir / "pipelines/documents_text.json", "--report", dir / "r2.json"});
    ASSERT_EQ(two.exit_code, 0) << two.err;
    bj::object rep = read_checked_report(dir / "r2.json");
    EXPECT_EQ(rep.at("stages").as_array()[0].at("threads").to_number<int64_t>(), 2);
    auto both = read_lines(dir / "out/documents_text/chunks.ndjson");
    std::sort(one.begin(), one.end());
    std::sort(both.begin(), both.end());
    EXPECT_EQ(both, one);
    EXPECT_EQ(read_lines(dir / "out/documents_text/unreadable.ndjson").size(), 1u);
}
