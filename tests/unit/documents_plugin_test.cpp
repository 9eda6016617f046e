// The documents extractor on a small corpus made here: text, Markdown,
// HTML, PDF and JSON, plus files it must refuse.
#include "resume_check.hpp"
#include "stage_harness.hpp"
#include "temp_dir.hpp"

#include <boost/json.hpp>
#include <gtest/gtest.h>

#include <map>

using namespace sluice;
using namespace sluice::test;
namespace bj = boost::json;

namespace {

// A one-page PDF showing `text` (Helvetica), with a correct xref table.
std::string make_pdf(const std::string &text, const std::string &title) {
    std::string content = "BT /F1 12 Tf 20 100 Td (" + text + ") Tj ET";
    std::vector<std::string> objects = {
        "<< /Type /Catalog /Pages 2 0 R >>",
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 400 200] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>",
        "<< /Length " + std::to_string(content.size()) + " >>\nstream\n" + content + "\nendstream",
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        "<< /Title (" + title + ") >>"};
    std::string pdf = "%PDF-1.4\n";
    std::vector<size_t> offsets;
    for (size_t i = 0; i < objects.size(); ++i) {
        offsets.push_back(pdf.size());
        pdf += std::to_string(i + 1) + " 0 obj\n" + objects[i] + "\nendobj\n";
    }
    size_t xref = pdf.size();
    pdf += "xref\n0 " + std::to_string(objects.size() + 1) + "\n0000000000 65535 f \n";
    for (size_t o : offsets) {
        char line[32];
        std::snprintf(line, sizeof line, "%010zu 00000 n \n", o);
        pdf += line;
    }
    pdf += "trailer\n<< /Size " + std::to_string(objects.size() + 1) + " /Root 1 0 R /Info 6 0 R >>\nstartxref\n" +
           std::to_string(xref) + "\n%%EOF\n";
    return pdf;
}

struct Read {
    std::map<std::string, bj::object> by_name;
    std::vector<std::string> failures; // "file: message"
    size_t records = 0;
};

Read read_corpus(const std::string &dir, const std::string &config) {
    StageHarness h(SLUICE_KIND_EXTRACTOR, "documents", config, dir);
    h.start();
    Emitted e = h.pull_all(3);
    EXPECT_EQ(e.status, SLUICE_OK) << e.error;
    Read r;
    for (const auto &payload : e.out()) {
        bj::object o = bj::parse(payload).as_object();
        std::string key(o.at("file_name").as_string());
        if (o.contains("chunk")) key += "#" + std::to_string(o.at("chunk").as_int64());
        r.by_name[key] = o;
        ++r.records;
    }
    for (const auto &f : e.failures) {
        std::string source = "?";
        for (uint32_t i = 0; i < f.record.attr_count; ++i)
            if (std::string_view(f.record.attrs[i].key, f.record.attrs[i].key_len) == SLUICE_ATTR_SOURCE)
                source = std::string(f.record.attrs[i].value, f.record.attrs[i].value_len);
        r.failures.push_back(source.substr(source.rfind('/') + 1) + ": " + f.message);
    }
    return r;
}

} // namespace

TEST(Documents, EachKindOfDocumentBecomesTextWithMetadata) {
    TempDir dir;
    dir.write("docs/a.txt", "Plain text,\nsecond line.");
    dir.write("docs/notes/b.md", "# Title\n\nSome *markdown* here.");
    dir.write("docs/c.html", "<html><head><title>The Page</title><style>p{}</style><script>var x=1;</script></head>"
                             "<body><h1>Hello</h1><p>First   paragraph.</p><ul><li>one</li><li>two</li></ul></body></html>");
    dir.write("docs/d.pdf", make_pdf("Hello PDF world", "A PDF"));
    dir.write("docs/e.json", "{\"k\": [1, 2]}");
    dir.write("docs/skip.csv", "a,b");
    Read r = read_corpus(dir.path(), R"({"path":"docs"})");
    ASSERT_EQ(r.records, 5u) << "csv is not included";
    EXPECT_TRUE(r.failures.empty());
    EXPECT_EQ(r.by_name["a.txt"].at("text"), "Plain text,\nsecond line.");
    EXPECT_EQ(r.by_name["a.txt"].at("content_type"), "text/plain");
    EXPECT_EQ(r.by_name["a.txt"].at("size").as_int64(), 24);
    EXPECT_EQ(r.by_name["a.txt"].at("path").as_string(), dir / "docs/a.txt");
    EXPECT_EQ(r.by_name["b.md"].at("content_type"), "text/markdown") << "found in a subdirectory";
    EXPECT_EQ(r.by_name["c.html"].at("text"), "Hello\nFirst paragraph.\none\ntwo") << "no script, no style";
    EXPECT_EQ(r.by_name["c.html"].at("title"), "The Page");
    EXPECT_EQ(r.by_name["d.pdf"].at("content_type"), "application/pdf");
    EXPECT_EQ(r.by_name["d.pdf"].at("text"), "Hello PDF world");
    EXPECT_EQ(r.by_name["d.pdf"].at("pages").as_int64(), 1);
    EXPECT_EQ(r.by_name["d.pdf"].at("title"), "A PDF");
    EXPECT_EQ(r.by_name["e.json"].at("content_type"), "application/json");
    EXPECT_TRUE(r.by_name["a.txt"].at("modified").as_string().ends_with("Z"));
}

TEST(Documents, UnreadableFilesTakeTheErrorPathWithTheReason) {
    TempDir dir;
    dir.write("docs/ok.txt", "fine");
    dir.write("docs/broken.pdf", "%PDF-1.4\nthis is not really a pdf");
    dir.write("docs/image.pdf", std::string("\x89PNG\r\n\x1a\n\0\0\0\rIHDR", 16));
    dir.write("docs/big.txt", std::string(2000, 'x'));
    Read r = read_corpus(dir.path(), R"({"path":"docs","max_file_bytes":1000})");
    EXPECT_EQ(r.records, 1u);
    std::sort(r.failures.begin(), r.failures.end());
    EXPECT_EQ(r.failures, (std::vector<std::string>{"big.txt: larger than max_file_bytes (1000)",
                                                    "broken.pdf: application/pdf: not a readable PDF",
                                                    "image.pdf: unsupported content type image/png"}));
}

TEST(Documents, ChunksOverlapAndEndAtWhiteSpace) {
    TempDir dir;
    std::string text;
    for (int i = 0; i < 30; ++i) text += "word" + std::to_string(i) + " ";
    dir.write("docs/long.txt", text);
    Read r = read_corpus(dir.path(), R"({"path":"docs","chunk_chars":50,"chunk_overlap":10})");
    ASSERT_GT(r.records, 3u);
    std::string first(r.by_name["long.txt#0"].at("text").as_string());
    std::string second(r.by_name["long.txt#1"].at("text").as_string());
    EXPECT_LE(first.size(), 50u);
    EXPECT_EQ(first.back(), ' ') << "ends at white space: " << first;
    EXPECT_EQ(r.by_name["long.txt#0"].at("chunks").as_int64(), int64_t(r.records));
    // The second chunk starts 10 characters before the first one ended.
    EXPECT_EQ(first.substr(first.size() - 10), second.substr(0, 10));
    EXPECT_EQ(r.by_name["long.txt#1"].at("chunk_start").as_int64(), int64_t(first.size()) - 10);
}

TEST(Documents, ConfigMistakes) {
    EXPECT_EQ(StageHarness::create_error(SLUICE_KIND_EXTRACTOR, "documents", R"({"path":"d","chunk_chars":10,"chunk_overlap":10})"),
              "chunk_overlap: must be less than chunk_chars");
    StageHarness h(SLUICE_KIND_EXTRACTOR, "documents", R"({"path":"/nonexistent/dir"})");
    EXPECT_THROW(h.start(), std::runtime_error);
}

TEST(Documents, ResumesAtEveryPullWithoutLosingOrRepeatingARecord) {
    TempDir dir;
    std::string text;
    for (int i = 0; i < 40; ++i) text += "word" + std::to_string(i) + " ";
    dir.write("docs/a.txt", "short");
    dir.write("docs/b/long.txt", text); // several chunks, cut across pulls
    dir.write("docs/c.pdf", "%PDF-1.4\nnot really");
    dir.write("docs/d.md", "# last");
    const std::string config = R"({"path":"docs","chunk_chars":60,"chunk_overlap":5})";
    expect_resumes_exactly("documents", config, dir.path());
    StageHarness bad(SLUICE_KIND_EXTRACTOR, "documents", config, dir.path());
    EXPECT_THROW(bad.restore("{\"emitted\":3}"), std::runtime_error);
}
