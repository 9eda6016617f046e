// Changing a pipeline safely, as a user does it: YAML manifests and
// `sluice convert`, pipeline tests (`sluice test`) and dry runs.
#include "child_process.hpp"
#include "temp_dir.hpp"

#include <boost/json.hpp>
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>

using namespace sluice::test;
namespace bj = boost::json;
namespace fs = std::filesystem;

namespace {

const std::string kSource = SLUICE_SOURCE_DIR;

size_t count_of(const std::string &text, const std::string &what) {
    size_t n = 0;
    for (size_t p = text.find(what); p != std::string::npos; p = text.find(what, p + 1)) ++n;
    return n;
}

std::vector<std::string> read_lines_of(const std::string &text) {
    std::vector<std::string> lines;
    size_t start = 0;
    for (size_t nl; (nl = text.find('\n', start)) != std::string::npos; start = nl + 1)
        lines.push_back(text.substr(start, nl - start));
    return lines;
}

} // namespace

TEST(YamlManifests, AYamlManifestRunsLikeItsJson) {
    TempDir dir;
    fs::create_directories(dir / "pipelines");
    fs::copy(kSource + "/pipelines/data", dir / "pipelines/data", fs::copy_options::recursive);
    // The YAML example, and the same pipeline converted to JSON.
    fs::copy(kSource + "/pipelines/orders_yaml.yaml", dir / "pipelines/orders_yaml.yaml");
    ProcessResult conv = run_sluice({"convert", dir / "pipelines/orders_yaml.yaml", dir / "pipelines/as_json.json"});
    ASSERT_EQ(conv.exit_code, 0) << conv.err;
    std::string json = read_file(dir / "pipelines/as_json.json");
    EXPECT_NE(json.find("\"${ORDERS_CSV:-data/orders.csv}\""), std::string::npos) << "references are kept as written";
    // Both write the same files (the JSON one to its own directory).
    std::string text = json;
    for (size_t p; (p = text.find("../out/orders_yaml/")) != std::string::npos;) text.replace(p, 19, "../out/as_json/");
    dir.write("pipelines/as_json.json", text);
    ProcessResult y = run_sluice({"run", dir / "pipelines/orders_yaml.yaml"});
    ProcessResult j = run_sluice({"run", dir / "pipelines/as_json.json"});
    ASSERT_EQ(y.exit_code, 0) << y.err;
    ASSERT_EQ(j.exit_code, 0) << j.err;
    // The same records (two extractors interleave in any order; dead
    // letters carry times and ids).
    for (const char *f : {"orders.ndjson", "rejects.ndjson", "dead_letters.ndjson"}) {
        auto a = read_lines(dir / (std::string("out/orders_yaml/") + f));
        auto b = read_lines(dir / (std::string("out/as_json/") + f));
        EXPECT_FALSE(a.empty()) << f;
        EXPECT_EQ(a.size(), b.size()) << f;
        if (std::string(f) == "dead_letters.ndjson") continue;
        std::sort(a.begin(), a.end());
        std::sort(b.begin(), b.end());
        EXPECT_EQ(a, b) << f;
    }
    // And back: JSON to YAML gives the same document again.
    ProcessResult back = run_sluice({"convert", dir / "pipelines/as_json.json", "--to", "yaml"});
    ASSERT_EQ(back.exit_code, 0) << back.err;
    dir.write("again.yaml", back.out);
    ProcessResult again = run_sluice({"convert", dir / "again.yaml", "--to", "json"});
    EXPECT_EQ(bj::parse(again.out), bj::parse(text));
    // convert does not overwrite without --force.
    ProcessResult refused = run_sluice({"convert", dir / "again.yaml", dir / "pipelines/as_json.json"});
    EXPECT_EQ(refused.exit_code, 2);
    EXPECT_NE(refused.err.find("exists (--force replaces it)"), std::string::npos) << refused.err;
}

TEST(YamlManifests, ProblemsNameFileLineColumnAndJsonPath) {
    TempDir dir;
    dir.write("m.yaml", "name: t\nstages:\n  - id: in\n    kind: extractor\n    plugin: generate\n"
                        "    threads: lots\n  - id: out\n    kind: loader\n    plugin: \"null\"\n");
    ProcessResult r = run_sluice({"validate", dir / "m.yaml"});
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_EQ(r.err, dir / "m.yaml" + ":6:14: /stages/0/threads: expected a positive integer\n");
    // Problems found once the plugins are loaded have their place too.
    dir.write("config.yaml", "stages:\n  - id: in\n    kind: extractor\n    plugin: generate\n    config:\n"
                             "      count: -3\n      colour: red\n  - {id: out, kind: loader, plugin: \"null\"}\n");
    r = run_sluice({"validate", dir / "config.yaml"});
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_NE(r.err.find(dir / "config.yaml" + ":6:14: /stages/0/config/count: "), std::string::npos) << r.err;
    EXPECT_NE(r.err.find(dir / "config.yaml" + ":7:7: /stages/0/config/colour: "), std::string::npos) << r.err;
    dir.write("syntax.yml", "stages:\n  - id: a\n   kind: x\n");
    r = run_sluice({"validate", dir / "syntax.yml"});
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_EQ(r.err.rfind(dir / "syntax.yml" + ":3:", 0), 0u) << r.err;
    EXPECT_NE(r.err.find("YAML syntax error"), std::string::npos) << r.err;
}

TEST(PipelineTests, AFailingCaseExitsOneWithADiff) {
    TempDir dir;
    dir.write("t.yaml", R"(tests:
  - name: passes
    inputs: [{stage: read, records: [{order_id: "1", cust_email: a@example.com, amount: "2", quantity: "1", country: US}]}]
    expect: [{stage: write, count: 1}]
  - name: expects the wrong amount
    inputs: [{stage: read, records: [{order_id: "1", cust_email: a@example.com, amount: "2", quantity: "1", country: US}]}]
    expect:
      - stage: write
        records: [{order_id: 1, email: a@example.com, amount: 3, quantity: 1, country: US, source: quickstart}]
)");
    ProcessResult r = run_sluice({"test", kSource + "/pipelines/quickstart.json", dir / "t.yaml"});
    EXPECT_EQ(r.exit_code, 1) << r.err;
    EXPECT_NE(r.out.find("  ok    passes"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("  FAIL  expects the wrong amount"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("/tests/1/expect/0 (write): records differ"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("record 1: /amount: expected 3, got 2"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("1 passed, 1 failed"), std::string::npos) << r.out;
    // --case picks cases by name.
    r = run_sluice({"test", kSource + "/pipelines/quickstart.json", dir / "t.yaml", "--case", "passes"});
    EXPECT_EQ(r.exit_code, 0) << r.out;
    EXPECT_NE(r.out.find("1 passed, 0 failed, 1 not selected by --case"), std::string::npos) << r.out;
    // Nothing outside was read or written.
    EXPECT_FALSE(fs::exists(kSource + "/out/quickstart/orders.ndjson.tmp"));
}

TEST(PipelineTests, AnUnusableTestFileExitsTwoNamingWhere) {
    TempDir dir;
    dir.write("t.yaml", "tests:\n  - name: x\n    inputs: [{stage: read, records: []}]\n    expect:\n"
                        "      - {stage: write, cuont: 1}\n");
    ProcessResult r = run_sluice({"test", kSource + "/pipelines/quickstart.json", dir / "t.yaml"});
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_NE(r.err.find(dir / "t.yaml" + ":5:24: /tests/0/expect/0/cuont: unknown key"), std::string::npos) << r.err;
    dir.write("u.json", R"({"tests":[{"name":"x","inputs":[{"stage":"nope","records":[{}]}],"expect":[{"stage":"write","count":0}]}]})");
    r = run_sluice({"test", kSource + "/pipelines/quickstart.json", dir / "u.json"});
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.out.find("/tests/0/inputs/0/stage: unknown stage 'nope' (the manifest has: read, clean, quality, write)"),
              std::string::npos)
        << r.out;
}

TEST(DryRun, LoadersWriteNothingAndEachRecordTheyWouldWriteIsPrinted) {
    TempDir dir;
    fs::create_directories(dir / "pipelines");
    fs::copy(kSource + "/pipelines/data", dir / "pipelines/data", fs::copy_options::recursive);
    fs::copy(kSource + "/pipelines/orders_graph.json", dir / "pipelines/orders_graph.json");
    ProcessResult real = run_sluice({"run", dir / "pipelines/orders_graph.json", "--quiet"});
    ASSERT_EQ(real.exit_code, 0) << real.err;
    const size_t written = read_lines(dir / "out/orders_graph/orders.ndjson").size();
    fs::remove_all(dir / "out");

    ProcessResult dry = run_sluice({"run", dir / "pipelines/orders_graph.json", "--dry-run", "--quiet"});
    ASSERT_EQ(dry.exit_code, 0) << dry.err;
    EXPECT_FALSE(fs::exists(dir / "out")) << "a dry run creates no file or directory";
    EXPECT_EQ(count_of(dry.out, "{\"loader\":\"orders\","), written);
    EXPECT_EQ(count_of(dry.out, "{\"loader\":\"orders_csv\","), written);
    EXPECT_GT(count_of(dry.out, "{\"loader\":\"rejects\","), 0u);
    EXPECT_NE(dry.err.find("dry run: no loader wrote anything"), std::string::npos) << dry.err;
    for (const std::string &line : read_lines_of(dry.out)) {
        bj::object o = bj::parse(line).as_object();
        EXPECT_TRUE(o.contains("loader") && o.contains("id") && (o.contains("record") || o.contains("text"))) << line;
    }

    // --limit: each extractor reads at most N records.
    ProcessResult limited =
        run_sluice({"run", dir / "pipelines/orders_graph.json", "--dry-run", "--limit", "3", "--report", dir / "r.json"});
    ASSERT_EQ(limited.exit_code, 0) << limited.err;
    bj::object report = bj::parse(read_file(dir / "r.json")).as_object();
    for (const bj::value &s : report.at("stages").as_array())
        if (s.at("kind") == "extractor") {
            EXPECT_LE(s.at("out").to_number<int64_t>() + s.at("errors").to_number<int64_t>(), 3) << s;
        }
    EXPECT_FALSE(fs::exists(dir / "out"));
    ProcessResult misuse = run_sluice({"run", dir / "pipelines/orders_graph.json", "--limit", "3"});
    EXPECT_EQ(misuse.exit_code, 2);
    EXPECT_NE(misuse.err.find("--limit works with --dry-run only"), std::string::npos) << misuse.err;
}

TEST(DryRun, SavedPositionsAreNeitherReadNorMoved) {
    TempDir dir;
    fs::create_directories(dir / "pipelines");
    fs::copy(kSource + "/pipelines/data", dir / "pipelines/data", fs::copy_options::recursive);
    fs::copy(kSource + "/pipelines/orders_resumable.json", dir / "pipelines/orders_resumable.json");
    ProcessResult dry = run_sluice({"run", dir / "pipelines/orders_resumable.json", "--dry-run", "--quiet"});
    ASSERT_EQ(dry.exit_code, 0) << dry.err;
    EXPECT_FALSE(fs::exists(dir / "out/orders_resumable/state"));
    ProcessResult real = run_sluice({"run", dir / "pipelines/orders_resumable.json", "--quiet"});
    ASSERT_EQ(real.exit_code, 0) << real.err;
    const auto state = read_file(dir / "out/orders_resumable/state/orders_resumable.state.json");
    // A dry run after a real one reads everything again (it does not resume)
    // and leaves the position where the real run put it.
    ProcessResult again = run_sluice({"run", dir / "pipelines/orders_resumable.json", "--dry-run", "--quiet"});
    ASSERT_EQ(again.exit_code, 0) << again.err;
    EXPECT_EQ(count_of(again.out, "\"loader\":\"orders_out\""), count_of(dry.out, "\"loader\":\"orders_out\""));
    EXPECT_GT(count_of(again.out, "\"loader\":\"orders_out\""), 0u);
    EXPECT_EQ(read_file(dir / "out/orders_resumable/state/orders_resumable.state.json"), state);
}
