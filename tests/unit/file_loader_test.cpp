#include "stage_harness.hpp"
#include "temp_dir.hpp"

#include <gtest/gtest.h>

using namespace sluice;
using namespace sluice::test;

TEST(FileLoader, NdjsonAppearsOnlyWhenFlushed) {
    TempDir dir;
    {
        StageHarness l(SLUICE_KIND_LOADER, "file", R"({"path":"out/o.ndjson"})", dir.path());
        l.start();
        l.process({"{\"a\":1}", "{\"b\":2}"});
        EXPECT_FALSE(exists(dir / "out/o.ndjson")) << "nothing may look complete before the flush";
        EXPECT_EQ(l.flush().status, SLUICE_OK);
        EXPECT_EQ(l.counters()["records_written"], 2);
    }
    EXPECT_EQ(read_file(dir / "out/o.ndjson"), "{\"a\":1}\n{\"b\":2}\n");
    EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir / "out"), std::filesystem::directory_iterator{}), 1)
        << "no temp file left behind";
}

TEST(FileLoader, AFailedRunLeavesNoFileAndKeepsTheOldOne) {
    TempDir dir;
    dir.write("o.ndjson", "previous\n");
    {
        StageHarness l(SLUICE_KIND_LOADER, "file", R"({"path":"o.ndjson"})", dir.path());
        l.start();
        l.process({"{\"a\":1}"});
        l.stop(); // no flush: the run failed
    }
    EXPECT_EQ(read_file(dir / "o.ndjson"), "previous\n");
    EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir.path()), std::filesystem::directory_iterator{}), 1);
}

TEST(FileLoader, CsvQuotesWhatNeedsQuotingAndTakesColumnsFromTheFirstRecord) {
    TempDir dir;
    {
        StageHarness l(SLUICE_KIND_LOADER, "file", R"({"path":"o.csv"})", dir.path());
        l.start();
        l.process({R"({"id":1,"name":"Smith, \"J\"","note":"two\nlines","n":null,"obj":{"a":1}})",
                   R"({"name":" pad ","id":2,"extra":true})"});
        l.flush();
        EXPECT_EQ(l.counters()["records_with_fields_not_in_columns"], 1);
    }
    EXPECT_EQ(read_file(dir / "o.csv"),
              "id,name,note,n,obj\n1,\"Smith, \"\"J\"\"\",\"two\nlines\",,\"{\"\"a\"\":1}\"\n2,\" pad \",,,\n");
}

TEST(FileLoader, CsvWithExplicitColumnsAndTab) {
    TempDir dir;
    {
        StageHarness l(SLUICE_KIND_LOADER, "file", R"({"path":"o.tsv","format":"csv","columns":["b","a"],"delimiter":"\\t"})",
                       dir.path());
        l.start();
        l.process({R"({"a":1,"b":"x"})"});
        l.flush();
    }
    EXPECT_EQ(read_file(dir / "o.tsv"), "b\ta\nx\t1\n");
}

TEST(FileLoader, AppendModeAddsToTheFile) {
    TempDir dir;
    dir.write("log.ndjson", "{\"old\":1}\n");
    {
        StageHarness l(SLUICE_KIND_LOADER, "file", R"({"path":"log.ndjson","append":true})", dir.path());
        l.start();
        l.process({"{\"new\":2}"});
        l.flush();
    }
    EXPECT_EQ(read_file(dir / "log.ndjson"), "{\"old\":1}\n{\"new\":2}\n");
}

TEST(FileLoader, NonJsonRecordsFail) {
    TempDir dir;
    StageHarness l(SLUICE_KIND_LOADER, "file", R"({"path":"o.ndjson"})", dir.path());
    l.start();
    Batch b = make_batch({"plain text"});
    b.records[0].content_type = "text/plain";
    Emitted e = l.process(b);
    ASSERT_EQ(e.failures.size(), 1u);
    EXPECT_EQ(e.failures[0].message, "the file loader writes JSON records; this one is text/plain");
}

TEST(FileLoader, UnwritableDirectoryFailsAtStart) {
    StageHarness l(SLUICE_KIND_LOADER, "file", R"({"path":"/proc/nope/o.ndjson"})");
    EXPECT_THROW(l.start(), std::runtime_error);
}

TEST(FileLoader, AppendModeIsDurablePerBatchAndRenameModeOnlyAfterFlush) {
    TempDir dir;
    StageHarness append(SLUICE_KIND_LOADER, "file", R"({"path":"a.ndjson","append":true})", dir.path());
    EXPECT_EQ(append.durable_on_process(), true);
    append.start();
    append.process({"{\"n\":1}"});
    // On disk as soon as process returns, without a flush.
    EXPECT_EQ(read_file(dir / "a.ndjson"), "{\"n\":1}\n");
    StageHarness replace(SLUICE_KIND_LOADER, "file", R"({"path":"r.ndjson"})", dir.path());
    EXPECT_EQ(replace.durable_on_process(), false);
}

TEST(FileLoader, AppendModeCutsOffAPartialRecordLeftByACrash) {
    TempDir dir;
    dir.write("log.ndjson", "{\"n\":1}\n{\"n\":2}\n{\"n\":");
    {
        StageHarness l(SLUICE_KIND_LOADER, "file", R"({"path":"log.ndjson","append":true})", dir.path());
        l.start();
        l.process({"{\"n\":3}"});
        l.flush();
        bool warned = false;
        for (const auto &line : l.logs()) warned |= line.find("cut off 5 bytes of a partial record") != std::string::npos;
        EXPECT_TRUE(warned);
    }
    EXPECT_EQ(read_file(dir / "log.ndjson"), "{\"n\":1}\n{\"n\":2}\n{\"n\":3}\n");

    // CSV: a line break inside quotes is not a record boundary; no second header.
    dir.write("t.csv", "a,b\n1,\"x\ny\"\n2,\"torn\nhal");
    {
        StageHarness l(SLUICE_KIND_LOADER, "file", R"({"path":"t.csv","append":true})", dir.path());
        l.start();
        l.process({R"({"a":3,"b":"z"})"});
        l.flush();
    }
    EXPECT_EQ(read_file(dir / "t.csv"), "a,b\n1,\"x\ny\"\n3,z\n");
    // A file with no complete record at all is emptied, and gets its header.
    dir.write("e.csv", "a,b");
    {
        StageHarness l(SLUICE_KIND_LOADER, "file", R"({"path":"e.csv","append":true})", dir.path());
        l.start();
        l.process({R"({"a":1,"b":2})"});
        l.flush();
    }
    EXPECT_EQ(read_file(dir / "e.csv"), "a,b\n1,2\n");
}
