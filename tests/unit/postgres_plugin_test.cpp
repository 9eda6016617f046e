// The PostgreSQL extractor and loader against a real server started for
// these tests (initdb into a temp dir; Debian's postgresql package).
#include "postgres_server.hpp"
#include "stage_harness.hpp"

#include <gtest/gtest.h>

#include <memory>

using namespace sluice;
using namespace sluice::test;

class Postgres : public ::testing::Test {
protected:
    static void SetUpTestSuite() { server_ = std::make_unique<PostgresServer>(); }
    static void TearDownTestSuite() { server_.reset(); }

    static std::string with_conninfo(const std::string &config_rest) {
        return R"({"conninfo":")" + server_->conninfo() + "\"," + config_rest + "}";
    }
    static std::vector<std::string> read_all(const std::string &config, std::string *position = nullptr,
                                             const std::string &restore = "") {
        StageHarness h(SLUICE_KIND_EXTRACTOR, "postgres", with_conninfo(config));
        if (!restore.empty()) h.restore(restore);
        h.start();
        Emitted e = h.pull_all(2);
        EXPECT_EQ(e.status, SLUICE_OK) << e.error;
        if (position) *position = h.position().value_or("");
        return e.out();
    }

    static std::unique_ptr<PostgresServer> server_;
};

std::unique_ptr<PostgresServer> Postgres::server_;

TEST_F(Postgres, SqlTypesBecomeJson) {
    server_->exec(R"(CREATE TABLE types (id bigint, price numeric(10,2), ratio double precision, ok boolean,
        name text, tags jsonb, meta json, at timestamp, at_tz timestamptz, day date, nothing text);
      SET TIME ZONE 'UTC';
      INSERT INTO types VALUES (1, 19.99, 0.5, true, 'Ann "A"', '{"a": [1, 2]}', '{"b":null}',
        '2026-03-01 10:00:00', '2026-03-01 10:00:00+00', '2026-03-01', NULL);)");
    EXPECT_EQ(read_all(R"("table":"types")"),
              std::vector<std::string>{
                  R"({"id":1,"price":19.99,"ratio":0.5,"ok":true,"name":"Ann \"A\"","tags":{"a": [1, 2]},"meta":{"b":null},)"
                  R"("at":"2026-03-01T10:00:00","at_tz":"2026-03-01T10:00:00+00:00","day":"2026-03-01","nothing":null})"});
}

TEST_F(Postgres, IncrementalReadsResumeAfterTheSavedCursor) {
    server_->exec("CREATE TABLE events (id serial PRIMARY KEY, v text);"
                  "INSERT INTO events (v) SELECT 'e' || i FROM generate_series(1, 5) i;");
    std::string position;
    EXPECT_EQ(read_all(R"("table":"events","cursor_column":"id")", &position).size(), 5u);
    EXPECT_EQ(position, "{\"cursor\":5}");
    server_->exec("INSERT INTO events (v) VALUES ('f'), ('g');");
    EXPECT_EQ(read_all(R"("table":"events","cursor_column":"id")", &position, "{\"cursor\":5}"),
              (std::vector<std::string>{R"({"id":6,"v":"f"})", R"({"id":7,"v":"g"})"}));
    EXPECT_EQ(position, "{\"cursor\":7}");
    EXPECT_EQ(read_all(R"("cursor_column":"id","cursor_start":5,
                          "query":"SELECT id FROM events WHERE (:cursor IS NULL OR id > :cursor) ORDER BY id")"),
              (std::vector<std::string>{R"({"id":6})", R"({"id":7})"}));
}

TEST_F(Postgres, ATimestampCursorWorksToo) {
    server_->exec("CREATE TABLE changes (k text, updated_at timestamp);"
                  "INSERT INTO changes VALUES ('a', '2026-01-01 10:00'), ('b', '2026-01-02 10:00');");
    std::string position;
    EXPECT_EQ(read_all(R"("table":"changes","cursor_column":"updated_at")", &position).size(), 2u);
    EXPECT_EQ(position, R"({"cursor":"2026-01-02 10:00:00"})");
    server_->exec("INSERT INTO changes VALUES ('c', '2026-01-03 09:00');");
    EXPECT_EQ(read_all(R"("table":"changes","cursor_column":"updated_at")", nullptr, position),
              std::vector<std::string>{R"({"k":"c","updated_at":"2026-01-03T09:00:00"})"});
}

TEST_F(Postgres, LoaderCopiesAndRefusedRowsTakeTheErrorPath) {
    StageHarness l(SLUICE_KIND_LOADER, "postgres", with_conninfo(R"j("table":"orders","create_table":true,"key":["id"],
        "columns":[{"name":"id","type":"bigint"},{"name":"name","type":"text NOT NULL"},
                   {"name":"amount","type":"numeric(10,2) CHECK (amount >= 0)"},{"name":"paid","type":"boolean"},
                   {"name":"tags","type":"jsonb"}])j"));
    EXPECT_EQ(l.durable_on_process(), true);
    l.start();
    Emitted fast = l.process({R"({"id":1,"name":"a","amount":1.5,"paid":true,"tags":["x"]})",
                              R"({"id":2,"name":"b, \"quoted\"\nline","amount":0})"});
    EXPECT_TRUE(fast.failures.empty());
    Emitted slow = l.process({R"({"id":3,"name":"ok","amount":3})", R"({"id":4,"amount":1})",
                              R"({"id":5,"name":"neg","amount":-1})", R"({"id":"six","name":"x","amount":1})",
                              R"({"id":1,"name":"dup","amount":1})", R"({"id":7,"name":"ok too","amount":7})"});
    ASSERT_EQ(slow.failures.size(), 4u);
    EXPECT_EQ(slow.failures[0].message, R"(postgres: null value in column "name" of relation "orders" violates not-null constraint)");
    EXPECT_EQ(slow.failures[1].message, R"(postgres: new row for relation "orders" violates check constraint "orders_amount_check")");
    EXPECT_EQ(slow.failures[2].message, R"(postgres: invalid input syntax for type bigint: "six")");
    EXPECT_EQ(slow.failures[3].message, R"(postgres: duplicate key value violates unique constraint "orders_pkey")");
    l.flush();
    EXPECT_EQ(l.counters().at("rows_written"), 4);
    // Around each refused row by COPY again from the row after it (the
    // server names its line), not a statement per row.
    EXPECT_EQ(l.counters().at("copy_restarts"), 4);
    EXPECT_EQ(l.counters().count("batches_loaded_row_by_row"), 0u);
    EXPECT_EQ(server_->scalar("SELECT string_agg(id::text, ',' ORDER BY id) FROM orders"), "1,2,3,7");
    EXPECT_EQ(server_->scalar("SELECT name FROM orders WHERE id = 2"), "b, \"quoted\"\nline");
    EXPECT_EQ(server_->scalar("SELECT tags::text FROM orders WHERE id = 1"), "[\"x\"]");
}

TEST_F(Postgres, ABigBatchWithRefusedRowsIsCopiedAroundThem) {
    // A trigger refuses some rows too: its context lines come before COPY's.
    server_->exec("CREATE TABLE readings (id bigint PRIMARY KEY, v double precision CHECK (v >= 0));"
                  "CREATE FUNCTION no_thirteen() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                  "IF NEW.id % 1000 = 13 THEN RAISE EXCEPTION 'unlucky %', NEW.id USING ERRCODE = 'check_violation'; "
                  "END IF; RETURN NEW; END $$;"
                  "CREATE TRIGGER no_thirteen BEFORE INSERT ON readings FOR EACH ROW EXECUTE FUNCTION no_thirteen();");
    StageHarness l(SLUICE_KIND_LOADER, "postgres", with_conninfo(R"("table":"readings","columns":["id","v"])"));
    l.start();
    std::vector<std::string> batch;
    for (int i = 0; i < 20000; ++i)
        batch.push_back("{\"id\":" + std::to_string(i % 19999) + ",\"v\":" + (i % 4001 == 7 ? "-1" : "1.5") + "}");
    Emitted e = l.process(batch);
    // Refused: v < 0 at 7, 4008, 8009, 12010, 16011; id % 1000 = 13 (20
    // rows); the last row repeats id 0.
    ASSERT_EQ(e.failures.size(), 26u);
    EXPECT_EQ(std::string(e.failures.back().record.payload, e.failures.back().record.payload_len), batch.back());
    EXPECT_EQ(e.failures[1].message, "postgres: unlucky 13");
    EXPECT_EQ(e.failures.back().message, R"(postgres: duplicate key value violates unique constraint "readings_pkey")");
    l.flush();
    EXPECT_EQ(l.counters().at("rows_written"), 20000 - 26);
    EXPECT_EQ(l.counters().count("batches_loaded_row_by_row"), 0u);
    EXPECT_EQ(server_->scalar("SELECT count(*) FROM readings"), std::to_string(20000 - 26));
    EXPECT_EQ(server_->scalar("SELECT count(*) FROM readings WHERE id % 1000 = 13 OR v < 0"), "0");
}

TEST_F(Postgres, AnUpsertWithRefusedRowsGoesRowByRow) {
    server_->exec("CREATE TABLE shelf (sku text PRIMARY KEY, qty int NOT NULL);");
    StageHarness l(SLUICE_KIND_LOADER, "postgres",
                   with_conninfo(R"("table":"shelf","mode":"upsert","key":["sku"],"columns":["sku","qty"])"));
    l.start();
    Emitted e = l.process({R"({"sku":"a","qty":1})", R"({"sku":"b"})", R"({"sku":"a","qty":2})"});
    ASSERT_EQ(e.failures.size(), 1u);
    EXPECT_EQ(std::string(e.failures[0].record.payload, e.failures[0].record.payload_len), R"({"sku":"b"})");
    EXPECT_EQ(e.failures[0].message, R"(postgres: null value in column "qty" of relation "shelf" violates not-null constraint)");
    l.flush();
    EXPECT_EQ(l.counters().at("batches_loaded_row_by_row"), 1);
    EXPECT_EQ(server_->scalar("SELECT string_agg(sku || '=' || qty, ',' ORDER BY sku) FROM shelf"), "a=2");
}

// Binary COPY (copy_format auto) stores exactly what CSV stores, for every
// type it is made for: the same records into twin tables, one loaded each
// way, compared by the server.
TEST_F(Postgres, BinaryCopyStoresWhatCsvStores) {
    const std::string columns = "b boolean, s smallint, i integer, l bigint, r real, d double precision, t text, "
                                "v varchar(12), j json, jb jsonb";
    server_->exec("CREATE TABLE bin_rows (" + columns + "); CREATE TABLE csv_rows (" + columns + ");");
    const std::vector<std::string> records = {
        R"({"b":true,"s":-32768,"i":2147483647,"l":-9223372036854775808,"r":0.1,"d":-1.5e-300,"t":"plain","v":"short","j":{"a":[1,2]},"jb":{"z":1,"a":"x"}})",
        R"({"b":false,"s":32767,"i":-1,"l":9223372036854775807,"r":3.4e38,"d":1e308,"t":"quote \" comma , newline \n tab \t","v":"é \u00e9 \ud83d\ude00","j":"[1, 2]","jb":"[3,\"4\"]"})",
        R"({"b":null,"t":"","v":null,"j":[],"jb":null,"extra":"ignored"})",
        R"({"t":123,"v":true,"j":42,"jb":false,"d":0,"r":-0.0})",
        R"({"t":{"nested":{"deep":[null]}},"j":"{\"k\":\"v\"}","jb":{"k":"\\u0041"}})",
    };
    StageHarness bin(SLUICE_KIND_LOADER, "postgres", with_conninfo(R"("table":"bin_rows")"));
    StageHarness csv(SLUICE_KIND_LOADER, "postgres", with_conninfo(R"("table":"csv_rows","copy_format":"csv")"));
    bin.start();
    csv.start();
    EXPECT_TRUE(bin.process(records).failures.empty());
    EXPECT_TRUE(csv.process(records).failures.empty());
    bin.flush();
    csv.flush();
    EXPECT_EQ(bin.counters().at("batches_copied_in_binary"), 1);
    EXPECT_EQ(csv.counters().count("batches_copied_in_binary"), 0u);
    EXPECT_EQ(server_->scalar("SELECT count(*) FROM bin_rows"), "5");
    // json compared as text (it keeps its text), everything else as values.
    const std::string as_text = "SELECT b, s, i, l, r, d, t, v, j::text, jb FROM ";
    EXPECT_EQ(server_->scalar("SELECT count(*) FROM (" + as_text + "bin_rows EXCEPT ALL " + as_text + "csv_rows) x"), "0");
    EXPECT_EQ(server_->scalar("SELECT count(*) FROM (" + as_text + "csv_rows EXCEPT ALL " + as_text + "bin_rows) x"), "0");
    EXPECT_EQ(server_->scalar("SELECT t FROM bin_rows WHERE s = 32767"), "quote \" comma , newline \n tab \t");
    EXPECT_EQ(server_->scalar("SELECT v FROM bin_rows WHERE s = 32767"), "é é \xF0\x9F\x98\x80");
    EXPECT_EQ(server_->scalar("SELECT jb::text FROM bin_rows WHERE s = 32767"), R"([3, "4"])");
    EXPECT_EQ(server_->scalar("SELECT t FROM bin_rows WHERE j::text = '42'"), "123");
}

// A value binary cannot take as it is (a string for a number, 1.5 for an
// integer, a number too big for smallint) sends its batch as CSV: the
// server parses it as it always would, accepting "42" and 1 for a boolean,
// refusing the rest in its own words.
TEST_F(Postgres, AValueBinaryCannotTakeSendsItsBatchAsCsv) {
    server_->exec("CREATE TABLE mixed (n integer, s smallint, ok boolean);");
    StageHarness l(SLUICE_KIND_LOADER, "postgres", with_conninfo(R"("table":"mixed")"));
    l.start();
    EXPECT_TRUE(l.process({R"({"n":1,"s":1,"ok":true})"}).failures.empty());
    Emitted e = l.process({R"({"n":"42","s":2,"ok":true})", R"({"n":1.5,"s":3})", R"({"n":4,"s":70000})",
                           R"({"n":5,"ok":"maybe"})", R"({"n":6,"ok":1})"});
    ASSERT_EQ(e.failures.size(), 3u);
    EXPECT_EQ(e.failures[0].message, R"(postgres: invalid input syntax for type integer: "1.5")");
    EXPECT_EQ(e.failures[1].message, R"(postgres: value "70000" is out of range for type smallint)");
    EXPECT_EQ(e.failures[2].message, R"(postgres: invalid input syntax for type boolean: "maybe")");
    l.flush();
    EXPECT_EQ(l.counters().at("batches_copied_in_binary"), 1);
    EXPECT_EQ(l.counters().at("batches_sent_as_csv"), 1);
    EXPECT_EQ(server_->scalar("SELECT string_agg(n || ':' || coalesce(ok::text, '-'), ',' ORDER BY n) FROM mixed"),
              "1:true,6:true,42:true");
}

TEST_F(Postgres, UpsertUpdatesByKeyEvenWithinOneBatch) {
    server_->exec("CREATE TABLE stock (sku text PRIMARY KEY, qty int, note text DEFAULT 'n/a');");
    StageHarness l(SLUICE_KIND_LOADER, "postgres",
                   with_conninfo(R"("table":"stock","mode":"upsert","key":["sku"],"columns":["sku","qty"])"));
    l.start();
    EXPECT_TRUE(l.process({R"({"sku":"a","qty":1})", R"({"sku":"b","qty":2})"}).failures.empty());
    EXPECT_TRUE(l.process({R"({"sku":"a","qty":10})", R"({"sku":"a","qty":11})", R"({"sku":"c","qty":3})"}).failures.empty());
    l.flush();
    EXPECT_EQ(server_->scalar("SELECT string_agg(sku || '=' || qty || ':' || note, ',' ORDER BY sku) FROM stock"),
              "a=11:n/a,b=2:n/a,c=3:n/a");
}

TEST_F(Postgres, SetupMistakesAreOneLine) {
    StageHarness missing(SLUICE_KIND_LOADER, "postgres", with_conninfo(R"("table":"nope")"));
    try {
        missing.start();
        FAIL();
    } catch (const std::runtime_error &e) {
        EXPECT_EQ(std::string(e.what()), R"(table 'nope': relation "nope" does not exist)");
    }
    StageHarness refused(SLUICE_KIND_EXTRACTOR, "postgres", R"({"conninfo":"host=127.0.0.1 port=1 connect_timeout=2","table":"t"})");
    try {
        refused.start();
        FAIL();
    } catch (const std::runtime_error &e) {
        EXPECT_EQ(std::string(e.what()).rfind("cannot connect to PostgreSQL: ", 0), 0u) << e.what();
    }
    EXPECT_EQ(StageHarness::create_error(SLUICE_KIND_LOADER, "postgres", R"({"conninfo":"x","table":"t","create_table":true,"columns":["a"]})"),
              "columns: create_table needs a type for column 'a'");
}

// Issue 9, D1: a server that cannot take the batch (permission, a lost
// connection) is an environment error: the whole batch is undone and the
// call answers SLUICE_RETRY (the host retries, then fails the stage), never
// a per-record failure the default policy would skip. A lost connection is
// re-established on the next call.
TEST_F(Postgres, ServerFailuresAreEnvironmentErrorsNotRecordErrors) {
    server_->exec("CREATE TABLE guarded (id int PRIMARY KEY, v text);"
                  "CREATE ROLE loader LOGIN; GRANT SELECT ON guarded TO loader;");
    std::string conninfo = server_->conninfo();
    std::string as_loader = conninfo.substr(0, conninfo.find("user=")) + "user=loader" +
                            conninfo.substr(conninfo.find(' ', conninfo.find("user=")));
    StageHarness h(SLUICE_KIND_LOADER, "postgres", R"({"conninfo":")" + as_loader + R"(","table":"guarded"})");
    h.start();
    Emitted denied = h.process({R"({"id":1,"v":"a"})", R"({"id":2,"v":"b"})"});
    EXPECT_EQ(denied.status, SLUICE_RETRY) << denied.error;
    EXPECT_NE(denied.error.find("permission denied"), std::string::npos) << denied.error;
    EXPECT_TRUE(denied.failures.empty()) << "no record is blamed for the server's refusal";
    EXPECT_EQ(server_->scalar("SELECT count(*) FROM guarded"), "0");

    server_->exec("GRANT INSERT ON guarded TO loader");
    Emitted granted = h.process({R"({"id":1,"v":"a"})", R"({"id":1,"v":"dup"})", R"({"id":2,"v":"b"})"});
    EXPECT_EQ(granted.status, SLUICE_OK) << granted.error;
    ASSERT_EQ(granted.failures.size(), 1u) << "a constraint is still the record's fault";
    EXPECT_NE(granted.failures[0].message.find("duplicate key"), std::string::npos);

    EXPECT_EQ(h.settle().status, SLUICE_OK);
    server_->exec("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = 'loader'");
    Emitted lost = h.process({R"({"id":3,"v":"c"})"});
    EXPECT_EQ(lost.status, SLUICE_RETRY) << lost.error;
    EXPECT_TRUE(lost.failures.empty());
    Emitted again = h.process({R"({"id":3,"v":"c"})"});
    EXPECT_EQ(again.status, SLUICE_OK) << again.error;
    h.flush();
    EXPECT_EQ(server_->scalar("SELECT count(*) FROM guarded"), "3");
}

TEST_F(Postgres, ACommitThatFailsAfterItsCallReturnedIsFatalAtTheNextCallOrSettle) {
    // Checked only at COMMIT: the call that wrote the duplicate has returned
    // by the time the server refuses it.
    server_->exec("CREATE TABLE deferred_once (id int, CONSTRAINT deferred_once_id UNIQUE (id) DEFERRABLE "
                  "INITIALLY DEFERRED)");
    const std::string config = with_conninfo(R"("table":"deferred_once")");
    {
        StageHarness l(SLUICE_KIND_LOADER, "postgres", config);
        l.start();
        const std::string failed = "PostgreSQL: the COMMIT of a window already handed over failed: duplicate key "
                                   "value violates unique constraint \"deferred_once_id\" (none of its records is "
                                   "acknowledged; a restart sends them again)";
        Emitted accepted = l.process({R"({"id":1})", R"({"id":1})"});
        EXPECT_EQ(accepted.status, SLUICE_OK) << "handed over; its COMMIT is still running";
        // The next call finds the failure before committing its own window,
        // which never commits alone.
        Emitted next = l.process({R"({"id":2})"});
        EXPECT_EQ(next.status, SLUICE_FATAL);
        EXPECT_EQ(next.error, failed);
        // Or settle finds it.
        EXPECT_EQ(l.process({R"({"id":3})", R"({"id":3})"}).status, SLUICE_OK);
        Emitted settled = l.settle();
        EXPECT_EQ(settled.status, SLUICE_FATAL);
        EXPECT_EQ(settled.error, failed);
        EXPECT_EQ(l.process({R"({"id":4})"}).status, SLUICE_OK);
        EXPECT_EQ(l.settle().status, SLUICE_OK);
        EXPECT_EQ(server_->scalar("SELECT string_agg(id::text, ',') FROM deferred_once"), "4");
    }
    {
        // Without overlap the COMMIT fails inside its call: the server's
        // error, tried again by the host like any other.
        StageHarness l(SLUICE_KIND_LOADER, "postgres", with_conninfo(R"("table":"deferred_once","overlap_commits":false)"));
        l.start();
        Emitted refused = l.process({R"({"id":5})", R"({"id":5})"});
        EXPECT_EQ(refused.status, SLUICE_RETRY) << refused.error;
        EXPECT_NE(refused.error.find("deferred_once_id"), std::string::npos) << refused.error;
        EXPECT_EQ(l.settle().status, SLUICE_OK);
        EXPECT_EQ(server_->scalar("SELECT count(*) FROM deferred_once WHERE id = 5"), "0");
    }
}

TEST_F(Postgres, OverlappedWindowsCommitInOrderOnTwoConnections) {
    server_->exec("CREATE TABLE turns (id int)");
    StageHarness l(SLUICE_KIND_LOADER, "postgres", with_conninfo(R"("table":"turns")"));
    l.start();
    for (int w = 0; w < 6; ++w) {
        std::vector<std::string> rows;
        for (int i = 0; i < 1000; ++i) rows.push_back("{\"id\":" + std::to_string(w * 1000 + i) + "}");
        ASSERT_EQ(l.process(rows).status, SLUICE_OK);
        // When a call returns, every window before it has committed.
        EXPECT_GE(std::stoi(server_->scalar("SELECT count(*) FROM turns")), w * 1000) << "window " << w;
    }
    EXPECT_EQ(l.settle().status, SLUICE_OK);
    EXPECT_EQ(server_->scalar("SELECT count(*) FROM turns"), "6000");
}
