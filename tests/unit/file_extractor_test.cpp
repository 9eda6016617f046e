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
    Emitted e = read_all(R"({"path":"in.csv","strict_quotes":true})", dir.path());
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
              "delimiter: expected one character other than a quote or a line break");
    EXPECT_EQ(StageHarness::create_error(SLUICE_KIND_EXTRACTOR, "file", R"({"path":"x","header":false})"),
              "columns: required when header is false");
    EXPECT_EQ(StageHarness::create_error(SLUICE_KIND_EXTRACTOR, "file", R"({})"),
              "path: required key is missing");
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

// Issue 9, D2: a quote inside an unquoted field is taken literally, as
// Python's csv module does; strict_quotes refuses it (RFC 4180).
TEST(FileExtractor, CsvTakesBareQuotesLiterallyUnlessStrict) {
    TempDir dir;
    dir.write("in.csv", "id,where,note\n1,37°36'37.8\"N,ok\n2,\"quoted\"tail,x\n");
    Emitted e = read_all(R"({"path":"in.csv"})", dir.path());
    EXPECT_EQ(e.out(), (std::vector<std::string>{R"({"id":"1","where":"37°36'37.8\"N","note":"ok"})",
                                                 R"({"id":"2","where":"quotedtail","note":"x"})"}));
    EXPECT_TRUE(e.failures.empty());
    Emitted strict = read_all(R"({"path":"in.csv","strict_quotes":true})", dir.path());
    EXPECT_TRUE(strict.out().empty());
    ASSERT_EQ(strict.failures.size(), 2u);
    EXPECT_EQ(strict.failures[0].message, "invalid CSV: quote inside unquoted field 2");
}

// Issue 9, R2: one over-long CSV row used to end the file ("skipping the
// rest of the file", the file then saved as read): 99,990 rows lost for good.
TEST(FileExtractor, AnOverlongCsvRowIsOneErrorAndReadingGoesOn) {
    TempDir dir;
    std::string csv = "id,name\n";
    for (int i = 1; i <= 2000; ++i) {
        if (i == 10) csv += "10," + std::string(5000, 'X') + "\n";
        else if (i == 20) // over-long, with a line break inside quotes that must not end it
            csv += "20,\"quoted " + std::string(500, 'Y') + "\nwith a line break, and " + std::string(400, 'Z') + "\"" +
                   std::string(1500, 'W') + "\n";
        else csv += std::to_string(i) + ",n\n";
    }
    dir.write("long.csv", csv);
    Emitted e = read_all(R"({"path":"long.csv","max_record_bytes":1024,"read_buffer_bytes":4096})", dir.path());
    EXPECT_EQ(e.out().size(), 1998u);
    ASSERT_EQ(e.failures.size(), 2u);
    EXPECT_EQ(e.failures[0].message, "record longer than max_record_bytes (1024); skipped to the next line break outside quotes");
    EXPECT_EQ(attr(e.failures[0].record, "source_line"), "11");
    EXPECT_EQ(attr(e.failures[1].record, "source_line"), "21");
    EXPECT_EQ(e.out().back(), R"({"id":"2000","name":"n"})");
    EXPECT_EQ(e.out()[18], R"({"id":"21","name":"n"})");
    EXPECT_EQ(attr(e.batches.back().records.back(), "source_line"), "2002") << "line numbers stay in step after a skip";
}

// An unterminated quote swallows at most max_record_bytes, then the reader
// takes the quote as stray and goes on at the next line break.
TEST(FileExtractor, AnUnterminatedCsvQuoteCannotSwallowTheRestOfTheFile) {
    TempDir dir;
    std::string csv = "id,name\n1,\"never closed\n";
    for (int i = 2; i <= 1000; ++i) csv += std::to_string(i) + ",n\n";
    dir.write("q.csv", csv);
    Emitted e = read_all(R"({"path":"q.csv","max_record_bytes":1024,"read_buffer_bytes":4096})", dir.path());
    ASSERT_EQ(e.failures.size(), 1u);
    EXPECT_EQ(attr(e.failures[0].record, "source_line"), "2");
    ASSERT_FALSE(e.out().empty());
    EXPECT_EQ(e.out().back(), R"({"id":"1000","name":"n"})");
    EXPECT_GT(e.out().size(), 800u) << "only about max_record_bytes of rows go with the bad quote";
}

// Issue 9, R4: invalid UTF-8 in a CSV row passed the reader and reached the
// output as invalid JSON.
TEST(FileExtractor, InvalidUtf8IsCaughtInEveryFormat) {
    TempDir dir;
    dir.write("bad.csv", "id,name\n1,ok\n2,caf\xE9\n3,fine\n");
    Emitted c = read_all(R"({"path":"bad.csv"})", dir.path());
    EXPECT_EQ(c.out(), (std::vector<std::string>{R"({"id":"1","name":"ok"})", R"({"id":"3","name":"fine"})"}));
    ASSERT_EQ(c.failures.size(), 1u);
    EXPECT_EQ(c.failures[0].message, "invalid UTF-8 at byte 6 of the record");
    EXPECT_EQ(attr(c.failures[0].record, "source_line"), "3");
    dir.write("bad.ndjson", "{\"a\":\"caf\xE9\"}\n{\"a\":1}\n");
    Emitted n = read_all(R"({"path":"bad.ndjson"})", dir.path());
    EXPECT_EQ(n.out(), (std::vector<std::string>{R"({"a":1})"}));
    ASSERT_EQ(n.failures.size(), 1u);
    dir.write("bad.json", "[{\"a\":\"caf\xE9\"},{\"a\":2}]");
    Emitted j = read_all(R"({"path":"bad.json"})", dir.path());
    EXPECT_EQ(j.out(), (std::vector<std::string>{R"({"a":2})"}));
    ASSERT_EQ(j.failures.size(), 1u);
}

// Issue 9, R7: max_record_bytes 1024 did not reject 2,000-byte NDJSON
// records (only records longer than the read buffer were caught).
TEST(FileExtractor, MaxRecordBytesHoldsInEveryFormat) {
    TempDir dir;
    std::string big = "{\"a\":\"" + std::string(2000, 'x') + "\"}";
    dir.write("in.ndjson", "{\"a\":1}\n" + big + "\n{\"a\":2}\n");
    Emitted n = read_all(R"({"path":"in.ndjson","max_record_bytes":1024})", dir.path());
    EXPECT_EQ(n.out(), (std::vector<std::string>{R"({"a":1})", R"({"a":2})"}));
    ASSERT_EQ(n.failures.size(), 1u);
    EXPECT_EQ(n.failures[0].message, "record longer than max_record_bytes (1024)");
    EXPECT_EQ(attr(n.failures[0].record, "source_line"), "2");
    dir.write("in.json", "[{\"a\":1}," + big + ",{\"a\":2}]");
    Emitted j = read_all(R"({"path":"in.json","max_record_bytes":1024})", dir.path());
    EXPECT_EQ(j.out(), (std::vector<std::string>{R"({"a":1})", R"({"a":2})"}));
    ASSERT_EQ(j.failures.size(), 1u);
    dir.write("in.csv", "a\n1\n" + std::string(2000, 'y') + "\n2\n");
    Emitted c = read_all(R"({"path":"in.csv","max_record_bytes":1024})", dir.path());
    EXPECT_EQ(c.out(), (std::vector<std::string>{R"({"a":"1"})", R"({"a":"2"})"}));
    ASSERT_EQ(c.failures.size(), 1u);
}

// Issue 9, R6: an unreadable input (here a directory the glob matches) was
// dead-lettered as an empty record and the file saved as read. Now it is an
// environment error (SLUICE_RETRY: the host retries, then fails the run)
// and the position never moves past it; allow_unreadable passes over it.
TEST(FileExtractor, AnUnreadableFileIsAnEnvironmentErrorUnlessAllowed) {
    TempDir dir;
    dir.write("in/a.ndjson", "{\"a\":1}\n");
    std::filesystem::create_directories(dir / "in/b.ndjson");
    dir.write("in/c.ndjson", "{\"c\":1}\n");
    StageHarness h(SLUICE_KIND_EXTRACTOR, "file", R"({"path":"in/*.ndjson"})", dir.path());
    h.start();
    Emitted first = h.pull(1000);
    EXPECT_EQ(first.status, SLUICE_OK) << "what was read before the failure goes out";
    EXPECT_EQ(first.out(), (std::vector<std::string>{R"({"a":1})"}));
    const std::string before = h.position().value();
    for (int attempt = 0; attempt < 3; ++attempt) {
        Emitted again = h.pull(1000);
        EXPECT_EQ(again.status, SLUICE_RETRY);
        EXPECT_NE(again.error.find("b.ndjson:1: read error: Is a directory"), std::string::npos) << again.error;
        EXPECT_TRUE(again.out().empty());
        EXPECT_EQ(h.position().value(), before) << "the unreadable file is never saved as read";
    }
    EXPECT_EQ(before.find("\"done\""), std::string::npos) << before;

    Emitted allowed = read_all(R"({"path":"in/*.ndjson","allow_unreadable":true})", dir.path());
    EXPECT_EQ(allowed.out(), (std::vector<std::string>{R"({"a":1})", R"({"c":1})"}));
    ASSERT_EQ(allowed.failures.size(), 1u);
    EXPECT_NE(allowed.failures[0].message.find("read error: Is a directory"), std::string::npos);
}

// Issue 9, D6: 1e400 or a 30-digit integer failed the record with "Problem
// while parsing a number", naming no field.
TEST(FileExtractor, ANumberNothingCanHoldIsAnErrorNamingItsField) {
    TempDir dir;
    dir.write("in.ndjson", "{\"id\":1,\"amount\":1e400}\n{\"id\":123456789012345678901234567890}\n"
                           "{\"items\":[{\"p\":1},{\"p\":-1e999}]}\n{\"ok\":-0,\"tiny\":1e-400}\n");
    Emitted e = read_all(R"({"path":"in.ndjson"})", dir.path());
    EXPECT_EQ(e.out(), std::vector<std::string>{"{\"ok\":-0,\"tiny\":1e-400}"});
    ASSERT_EQ(e.failures.size(), 3u);
    EXPECT_EQ(e.failures[0].message, "field 'amount': the number 1e400 is out of the range of a double");
    EXPECT_EQ(e.failures[1].message, "field 'id': the number 123456789012345678901234567890 does not fit a 64-bit integer");
    EXPECT_EQ(e.failures[2].message, "field 'items[1].p': the number -1e999 is out of the range of a double");
}
