// The SQLite extractor and loader against real database files.
#include "stage_harness.hpp"
#include "temp_dir.hpp"

#include <boost/json.hpp>
#include <gtest/gtest.h>

#include <sqlite3.h>

using namespace sluice;
using namespace sluice::test;
namespace bj = boost::json;

namespace {

void sql(const std::string &db, const std::string &statement) {
    sqlite3 *h = nullptr;
    ASSERT_EQ(sqlite3_open(db.c_str(), &h), SQLITE_OK);
    char *err = nullptr;
    EXPECT_EQ(sqlite3_exec(h, statement.c_str(), nullptr, nullptr, &err), SQLITE_OK) << (err ? err : "");
    sqlite3_free(err);
    sqlite3_close(h);
}

std::vector<std::string> read_all(const std::string &config, const std::string &base, std::string *position = nullptr,
                                  const std::string &restore = "") {
    StageHarness h(SLUICE_KIND_EXTRACTOR, "sqlite", config, base);
    if (!restore.empty()) h.restore(restore);
    h.start();
    Emitted e = h.pull_all(2);
    EXPECT_EQ(e.status, SLUICE_OK) << e.error;
    if (position) *position = h.position().value_or("");
    return e.out();
}

const char *kColumns = R"json([{"name":"id","type":"INTEGER"},{"name":"name","type":"TEXT NOT NULL"},
  {"name":"amount","type":"REAL CHECK (amount >= 0)"},{"name":"paid","type":"BOOLEAN"},{"name":"tags","type":"JSON"},
  {"name":"note","type":"TEXT"}])json";

} // namespace

TEST(Sqlite, TypesRoundTripThroughLoaderAndExtractor) {
    TempDir dir;
    {
        StageHarness l(SLUICE_KIND_LOADER, "sqlite",
                       std::string(R"({"path":"t.db","table":"orders","create_table":true,"key":["id"],"columns":)") +
                           kColumns + "}",
                       dir.path());
        EXPECT_EQ(l.durable_on_process(), true);
        l.start();
        Emitted e = l.process({R"({"id":1,"name":"Ann","amount":19.99,"paid":true,"tags":["a","b"],"note":null})",
                               R"({"id":2,"name":"Bo \"B\"","amount":0,"paid":false,"tags":{"k":1},"extra":"dropped"})"});
        EXPECT_TRUE(e.failures.empty());
        l.flush();
        EXPECT_EQ(l.counters().at("rows_written"), 2);
        EXPECT_EQ(l.counters().at("records_with_fields_not_in_table"), 1);
    }
    EXPECT_EQ(read_all(R"({"path":"t.db","table":"orders"})", dir.path()),
              (std::vector<std::string>{
                  R"({"id":1,"name":"Ann","amount":19.99,"paid":true,"tags":["a","b"],"note":null})",
                  R"({"id":2,"name":"Bo \"B\"","amount":0,"paid":false,"tags":{"k":1},"note":null})"}));
}

TEST(Sqlite, RefusedRowsTakeTheErrorPathAndTheRestOfTheBatchLoads) {
    TempDir dir;
    StageHarness l(SLUICE_KIND_LOADER, "sqlite",
                   std::string(R"({"path":"t.db","table":"orders","create_table":true,"key":["id"],"columns":)") +
                       kColumns + "}",
                   dir.path());
    l.start();
    Emitted e = l.process({R"({"id":1,"name":"ok","amount":5})", R"({"id":2,"amount":5})",
                           R"({"id":3,"name":"neg","amount":-1})", R"({"id":1,"name":"dup","amount":1})",
                           R"([1,2])", R"({"id":4,"name":"ok too","amount":6})"});
    ASSERT_EQ(e.failures.size(), 4u);
    EXPECT_EQ(e.failures[0].message, "sqlite: NOT NULL constraint failed: orders.name");
    EXPECT_EQ(e.failures[1].message, "sqlite: CHECK constraint failed: amount >= 0");
    EXPECT_EQ(e.failures[2].message, "sqlite: UNIQUE constraint failed: orders.id");
    EXPECT_EQ(e.failures[3].message, "sqlite: payload is not a JSON object");
    l.stop();
    EXPECT_EQ(read_all(R"({"path":"t.db","query":"SELECT id FROM orders ORDER BY id"})", dir.path()),
              (std::vector<std::string>{R"({"id":1})", R"({"id":4})"}));
}

TEST(Sqlite, UpsertUpdatesByKey) {
    TempDir dir;
    std::string config = std::string(R"({"path":"t.db","table":"orders","mode":"upsert","create_table":true,"key":["id"],"columns":)") +
                         kColumns + "}";
    for (const char *name : {"first", "second"}) {
        StageHarness l(SLUICE_KIND_LOADER, "sqlite", config, dir.path());
        l.start();
        Emitted e = l.process({std::string(R"({"id":7,"name":")") + name + R"(","amount":1})"});
        EXPECT_TRUE(e.failures.empty()) << e.failures[0].message;
    }
    EXPECT_EQ(read_all(R"({"path":"t.db","query":"SELECT id, name FROM orders"})", dir.path()),
              std::vector<std::string>{R"({"id":7,"name":"second"})"});
    EXPECT_EQ(StageHarness::create_error(SLUICE_KIND_LOADER, "sqlite", R"({"path":"t.db","table":"t","mode":"upsert"})"),
              "key: required with mode upsert: the key columns");
}

// WAL with synchronous=NORMAL unless durability: full (or its older name,
// synchronous: full), as SQLite reads the setting back.
TEST(Sqlite, DurabilityIsNormalUnlessFullIsAskedFor) {
    TempDir dir;
    auto said = [&](const std::string &extra) {
        StageHarness l(SLUICE_KIND_LOADER, "sqlite",
                       R"({"path":"t.db","table":"t","create_table":true,"columns":[{"name":"a","type":"TEXT"}])" + extra + "}",
                       dir.path());
        l.start();
        for (const std::string &line : l.logs())
            if (line.rfind("durability ", 0) == 0) return line;
        return std::string("nothing said");
    };
    EXPECT_EQ(said(""), "durability normal: PRAGMA synchronous is NORMAL");
    EXPECT_EQ(said(R"(,"durability":"full")"), "durability full: PRAGMA synchronous is FULL");
    EXPECT_EQ(said(R"(,"synchronous":"full")"), "durability full: PRAGMA synchronous is FULL");
}

TEST(Sqlite, IncrementalReadsResumeAfterTheSavedCursor) {
    TempDir dir;
    sql(dir / "s.db", "CREATE TABLE events (id INTEGER PRIMARY KEY, v TEXT);"
                      "INSERT INTO events (v) VALUES ('a'),('b'),('c'),('d'),('e');");
    const std::string config = R"({"path":"s.db","table":"events","cursor_column":"id"})";
    std::string position;
    EXPECT_EQ(read_all(config, dir.path(), &position).size(), 5u);
    EXPECT_EQ(position, "{\"cursor\":5}");
    sql(dir / "s.db", "INSERT INTO events (v) VALUES ('f'),('g');");
    EXPECT_EQ(read_all(config, dir.path(), &position, "{\"cursor\":5}"),
              (std::vector<std::string>{R"({"id":6,"v":"f"})", R"({"id":7,"v":"g"})"}));
    EXPECT_EQ(position, "{\"cursor\":7}");
    // A query gets the cursor as :cursor; cursor_start applies to a first run.
    EXPECT_EQ(read_all(R"({"path":"s.db","cursor_column":"id","cursor_start":4,
                          "query":"SELECT id FROM events WHERE (:cursor IS NULL OR id > :cursor) ORDER BY id"})",
                       dir.path()),
              (std::vector<std::string>{R"({"id":5})", R"({"id":6})", R"({"id":7})"}));
    EXPECT_EQ(StageHarness::create_error(SLUICE_KIND_EXTRACTOR, "sqlite",
                                         R"({"path":"s.db","cursor_column":"id","query":"SELECT * FROM events"})"),
              "query: with cursor_column the query must filter on :cursor, e.g. WHERE (:cursor IS NULL OR id > "
              ":cursor) ORDER BY id");
}

TEST(Sqlite, SetupMistakesAreOneLine) {
    TempDir dir;
    StageHarness missing(SLUICE_KIND_LOADER, "sqlite", R"({"path":"t.db","table":"nope"})", dir.path());
    try {
        missing.start();
        FAIL();
    } catch (const std::runtime_error &e) {
        EXPECT_EQ(std::string(e.what()), "table 'nope' does not exist in " + dir / "t.db" +
                                             " (set create_table and columns to create it)");
    }
    StageHarness bad(SLUICE_KIND_EXTRACTOR, "sqlite", R"({"path":"t.db","query":"SELECT nope FROM missing_table"})", dir.path());
    try {
        bad.start();
        FAIL();
    } catch (const std::runtime_error &e) {
        EXPECT_EQ(std::string(e.what()), dir / "t.db" + ": no such table: missing_table (in: SELECT nope FROM missing_table)");
    }
}
