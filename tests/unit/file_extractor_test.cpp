#include "resume_check.hpp"
#include "stage_harness.hpp"
#include "temp_dir.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>

using namespace sluice;
using namespace sluice::test;

namespace {

std::string attr(const sluice_record &r, std::string_view key) {
    for (uint32_t i = 0; i < r.attr_count; ++i)
        if (std::string_view(r.attrs[i].key, r.attrs[i].key_len) == key) return {r.attrs[i].value, r.attrs[i].value_len};
    return "(none)";
}

Emitted read_all(const std::string &config, const std::string &base = ".") {
    StageHarness h(SLUICE_KIND_EXTRACTOR, "file", config, base);
    h.start();
    Emitted e = h.pull_all(3); // small batches: exercise state kept across pulls
    EXPECT_EQ(e.status, SLUICE_OK) << e.error;
    EXPECT_TRUE(e.end);
    return e;
}

} // namespace

TEST(FileExtractor, NdjsonSkipsBlankLinesHandlesCrlfAndReportsBadLinesWithFileAndLine) {
    TempDir dir;
    std::string path = dir.write("in.ndjson", "{\"a\":1}\r\n\n{\"a\":2}\n{\"a\":\n  \n[1,2]\n{\"a\":3}");
    Emitted e = read_all(R"({"path":"in.ndjson"})", dir.path());
    EXPECT_EQ(e.out(), (std::vector<std::string>{"{\"a\":1}", "{\"a\":2}", "{\"a\":3}"}));
    ASSERT_EQ(e.failures.size(), 2u);
    EXPECT_EQ(e.failures[0].kind, FailureKind::unreadable);
    EXPECT_EQ(e.failures[0].message.rfind("invalid JSON: ", 0), 0u) << e.failures[0].message;
    EXPECT_EQ(attr(e.failures[0].record, "source"), path);
    EXPECT_EQ(attr(e.failures[0].record, "source_line"), "4");
    EXPECT_EQ(std::string(e.failures[0].record.payload, e.failures[0].record.payload_len), "{\"a\":");
    EXPECT_EQ(e.failures[1].message, "expected a JSON object");
    EXPECT_EQ(attr(e.failures[1].record, "source_line"), "6");
    // Good records carry where they came from too.
    EXPECT_EQ(attr(e.batches[0].records[0], "source_line"), "1");
}

TEST(FileExtractor, CsvFollowsRfc4180) {
    TempDir dir;
    dir.write("in.csv",
              "\xEF\xBB\xBFid,name,note\r\n"
              "1,\"Smith, Jane\",\"said \"\"hi\"\"\"\r\n"
              "2,Bob,\"two\nlines\"\n"
              "\n"
              "3,,\n"
              "4,x\n"
              "5,\"bad\"quote,z\n"
              "6,last,row");
    Emitted e = read_all(R"({"path":"in.csv"})", dir.path());
    EXPECT_EQ(e.out(), (std::vector<std::string>{
                           R"({"id":"1","name":"Smith, Jane","note":"said \"hi\""})",
                           R"({"id":"2","name":"Bob","note":"two\nlines"})",
                           R"({"id":"3","name":"","note":""})",
                           R"({"id":"6","name":"last","note":"row"})",
                       }));
    ASSERT_EQ(e.failures.size(), 2u);
    EXPECT_EQ(e.failures[0].message, "expected 3 fields (as in the header), found 2");
    EXPECT_EQ(attr(e.failures[0].record, "source_line"), "7") << "line numbers count the quoted line break";
    EXPECT_EQ(e.failures[1].message, "invalid CSV: unexpected character after the closing quote of field 2");
    EXPECT_EQ(attr(e.failures[1].record, "source_line"), "8");
    EXPECT_EQ(attr(e.batches[0].records[1], "source_line"), "3");
}

TEST(FileExtractor, CsvTypeInferenceDelimiterAndHeaderless) {
    TempDir dir;
    dir.write("a.txt", "n;f;b;s;e\n42;-1.5e3;true;007x;\n");
    Emitted e = read_all(R"({"path":"a.txt","format":"csv","delimiter":";","infer_types":true})", dir.path());
    EXPECT_EQ(e.out(), (std::vector<std::string>{R"({"n":42,"f":-1.5e3,"b":true,"s":"007x","e":null})"}));

    dir.write("b.csv", "1,2\n3,4\n");
    Emitted h = read_all(R"({"path":"b.csv","header":false,"columns":["x","y"]})", dir.path());
    EXPECT_EQ(h.out(), (std::vector<std::string>{R"({"x":"1","y":"2"})", R"({"x":"3","y":"4"})"}));

    dir.write("c.csv", "k,k,\nv,w,z\n");
    Emitted d = read_all(R"({"path":"c.csv"})", dir.path());
    EXPECT_EQ(d.out(), (std::vector<std::string>{R"({"k":"v","k_2":"w","column_3":"z"})"}));
}

TEST(FileExtractor, CsvUnterminatedQuoteAtEndOfFile) {
    TempDir dir;
    dir.write("in.csv", "a,b\n1,\"open\n2,3\n");
    Emitted e = read_all(R"({"path":"in.csv"})", dir.path());
    EXPECT_TRUE(e.out().empty());
    ASSERT_EQ(e.failures.size(), 1u);
    EXPECT_EQ(e.failures[0].message, "invalid CSV: unterminated quoted field 2");
    EXPECT_EQ(attr(e.failures[0].record, "source_line"), "2");
}

TEST(FileExtractor, JsonArrayStreamsElementsWithLineNumbers) {
    TempDir dir;
    dir.write("in.json", " [\n  {\"a\": [1, \"]\"]},\n  {\"b\":\n    {\"c\": \"}\"}},\n  {\"bad\": },\n  7,\n  {\"z\":0}\n]\n");
    Emitted e = read_all(R"({"path":"in.json"})", dir.path());
    EXPECT_EQ(e.out(), (std::vector<std::string>{"{\"a\": [1, \"]\"]}", "{\"b\":\n    {\"c\": \"}\"}}", "{\"z\":0}"}));
    EXPECT_EQ(attr(e.batches[0].records[0], "source_line"), "2");
    ASSERT_EQ(e.failures.size(), 2u);
    EXPECT_EQ(attr(e.failures[0].record, "source_line"), "5");
    EXPECT_EQ(e.failures[1].message, "expected a JSON object");
    EXPECT_EQ(attr(e.failures[1].record, "source_line"), "6");
}

TEST(FileExtractor, JsonFileThatIsNotAnArrayIsReadAsNdjsonAndBrokenArraysAreReported) {
    TempDir dir;
    dir.write("lines.json", "{\"a\":1}\n{\"a\":2}\n");
    EXPECT_EQ(read_all(R"({"path":"lines.json"})", dir.path()).out().size(), 2u);

    dir.write("open.json", "[{\"a\":1},\n{\"a\":2}");
    Emitted e = read_all(R"({"path":"open.json","format":"json"})", dir.path());
    EXPECT_EQ(e.out().size(), 2u);
    ASSERT_EQ(e.failures.size(), 1u);
    EXPECT_EQ(e.failures[0].message, "unexpected end of file: the JSON array is not closed");

    dir.write("obj.txt", "{\"a\":1}");
    Emitted o = read_all(R"({"path":"obj.txt","format":"json"})", dir.path());
    ASSERT_EQ(o.failures.size(), 1u);
    EXPECT_EQ(o.failures[0].message, "expected a JSON array ('[') at the start of the file");
}

TEST(FileExtractor, GlobReadsMatchingFilesInSortedOrder) {
    TempDir dir;
    for (int i = 0; i < 5; ++i) dir.write("d/part" + std::to_string(i) + ".ndjson", "{\"f\":" + std::to_string(i) + "}\n");
    dir.write("d/other.csv", "x\n1\n");
    Emitted e = read_all(R"({"path":"d/part*.ndjson"})", dir.path());
    EXPECT_EQ(e.out(), (std::vector<std::string>{"{\"f\":0}", "{\"f\":1}", "{\"f\":2}", "{\"f\":3}", "{\"f\":4}"}));
}

TEST(FileExtractor, NoMatchingFileFailsAtStartUnlessAllowed) {
    TempDir dir;
    StageHarness h(SLUICE_KIND_EXTRACTOR, "file", R"({"path":"none/*.csv"})", dir.path());
    try {
        h.start();
        FAIL() << "start should fail";
    } catch (const std::runtime_error &e) {
        EXPECT_EQ(std::string(e.what()), "path '" + dir.path() + "/none/*.csv' matches no file (set allow_no_files to accept that)");
    }
    StageHarness ok(SLUICE_KIND_EXTRACTOR, "file", R"({"path":"none/*.csv","allow_no_files":true})", dir.path());
    ok.start();
    EXPECT_TRUE(ok.pull(10).end);
}

TEST(FileExtractor, OverlongLinesGoToTheErrorPathAndReadingGoesOn) {
    TempDir dir;
    std::string big = "{\"x\":\"" + std::string(5000, 'a') + "\"}";
    dir.write("in.ndjson", "{\"a\":1}\n" + big + "\n{\"a\":2}\n");
    Emitted e = read_all(R"({"path":"in.ndjson","max_record_bytes":1024,"read_buffer_bytes":4096})", dir.path());
    EXPECT_EQ(e.out(), (std::vector<std::string>{"{\"a\":1}", "{\"a\":2}"}));
    ASSERT_EQ(e.failures.size(), 1u);
    EXPECT_EQ(e.failures[0].message, "record longer than max_record_bytes (1024)");
    EXPECT_EQ(attr(e.failures[0].record, "source_line"), "2");
}

TEST(FileExtractor, LargeFileAcrossManyBufferRefills) {
    TempDir dir;
    std::string content;
    for (int i = 0; i < 20000; ++i) content += "{\"i\":" + std::to_string(i) + ",\"pad\":\"" + std::string(i % 50, 'p') + "\"}\n";
    dir.write("big.ndjson", content);
    StageHarness h(SLUICE_KIND_EXTRACTOR, "file", R"({"path":"big.ndjson","read_buffer_bytes":4096})", dir.path());
    h.start();
    Emitted e = h.pull_all(1000);
    ASSERT_EQ(e.out().size(), 20000u);
    EXPECT_TRUE(e.failures.empty());
    EXPECT_EQ(e.out()[12345].rfind("{\"i\":12345,", 0), 0u);
}

TEST(FileExtractor, ConfigErrorsAreOneLine) {
    EXPECT_EQ(StageHarness::create_error(SLUICE_KIND_EXTRACTOR, "file", R"({"path":"x","delimiter":"ab"})"),
              "config.delimiter: expected one character other than a quote or a line break");
    EXPECT_EQ(StageHarness::create_error(SLUICE_KIND_EXTRACTOR, "file", R"({"path":"x","header":false})"),
              "config.columns: required when header is false");
    EXPECT_EQ(StageHarness::create_error(SLUICE_KIND_EXTRACTOR, "file", R"({})"),
              "config.path: required: expected a non-empty string");
}

// Resuming: stopping after any pull and restoring the position in a new
// instance reads exactly the records not read yet, for every format.

TEST(FileExtractor, ResumesNdjsonAcrossFilesAtEveryPull) {
    TempDir dir;
    dir.write("a.ndjson", "{\"a\":1}\n{\"a\":2}\n\n{\"a\":3}\n{bad\n{\"a\":4}\n");
    dir.write("b.ndjson", "{\"b\":1}\r\n{\"b\":2}\n{\"b\":3}");
    expect_resumes_exactly("file", R"({"path":"*.ndjson"})", dir.path());
}

TEST(FileExtractor, ResumesCsvAfterTheHeaderAndInsideQuotedLineBreaks) {
    TempDir dir;
    dir.write("in.csv", "id,note\n1,\"two\nlines\"\n2,plain\n3,\"x,y\"\n4,short,extra\n5,last\n6,\"\"\"q\"\"\"\n");
    expect_resumes_exactly("file", R"({"path":"in.csv"})", dir.path());
}

TEST(FileExtractor, ResumesInsideAJsonArray) {
    TempDir dir;
    dir.write("in.json", "[\n  {\"a\":1},\n  {\"a\":[2,\n 3]},\n  7,\n  {\"a\":4}, {\"a\":5}\n]\n");
    expect_resumes_exactly("file", R"({"path":"in.json"})", dir.path());
}

TEST(FileExtractor, PositionsNameTheFileAbsolutelyAndBadOnesAreRefused) {
    TempDir dir;
    dir.write("in.ndjson", "{\"a\":1}\n{\"a\":2}\n");
    StageHarness h(SLUICE_KIND_EXTRACTOR, "file", R"({"path":"in.ndjson"})", dir.path());
    h.start();
    EXPECT_EQ(h.position(), "") << "nothing read: no position yet";
    h.pull(1);
    std::string file = std::filesystem::absolute(std::filesystem::path(dir.path()) / "in.ndjson").lexically_normal();
    EXPECT_EQ(h.position(), "{\"file\":\"" + file + "\",\"offset\":8,\"line\":1}");
    h.pull(10);
    EXPECT_EQ(h.position(), "{\"file\":\"" + file + "\",\"done\":true}");

    StageHarness bad(SLUICE_KIND_EXTRACTOR, "file", R"({"path":"in.ndjson"})", dir.path());
    try {
        bad.restore("{\"offset\":3}");
        FAIL() << "accepted a position without a file";
    } catch (const std::runtime_error &e) {
        EXPECT_EQ(std::string(e.what()), "saved position {\"offset\":3} is not one this extractor wrote: no \"file\"");
    }
}

TEST(FileExtractor, ResumingCopesWithAFileThatShrankOrWentAway) {
    TempDir dir;
    dir.write("a.ndjson", "{\"a\":1}\n");
    dir.write("c.ndjson", "{\"c\":1}\n");
    std::string a = std::filesystem::absolute(std::filesystem::path(dir.path()) / "a.ndjson").lexically_normal();
    std::string b = std::filesystem::absolute(std::filesystem::path(dir.path()) / "b.ndjson").lexically_normal();
    {
        // b.ndjson was being read and is gone: go on with the files after it.
        StageHarness h(SLUICE_KIND_EXTRACTOR, "file", R"({"path":"*.ndjson"})", dir.path());
        h.restore("{\"file\":\"" + b + "\",\"offset\":100,\"line\":3}");
        h.start();
        EXPECT_EQ(h.pull_all().out(), (std::vector<std::string>{"{\"c\":1}"}));
    }
    {
        // a.ndjson is shorter than the saved offset: it was replaced; read it all.
        StageHarness h(SLUICE_KIND_EXTRACTOR, "file", R"({"path":"*.ndjson"})", dir.path());
        h.restore("{\"file\":\"" + a + "\",\"offset\":100,\"line\":3}");
        h.start();
        EXPECT_EQ(h.pull_all().out(), (std::vector<std::string>{"{\"a\":1}", "{\"c\":1}"}));
        bool warned = false;
        for (const auto &l : h.logs()) warned |= l.find("is now shorter") != std::string::npos;
        EXPECT_TRUE(warned);
    }
}
