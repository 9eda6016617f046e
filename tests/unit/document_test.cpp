// Manifests and test files in YAML: the same JSON value as the JSON text,
// positions for messages, the 1.2 core schema and what it refuses.
#include "document.hpp"
#include "manifest.hpp"

#include <gtest/gtest.h>

using namespace sluice;
namespace bj = boost::json;

namespace {

std::string error_of(const std::string &text, const std::string &path) {
    try {
        parse_document(text, path);
        return "(no error)";
    } catch (const DocumentSyntaxError &e) {
        return e.what();
    }
}

std::vector<std::string> manifest_errors(const std::string &text, const std::string &path) {
    try {
        parse_manifest(text, path);
        return {};
    } catch (const ManifestError &e) {
        return e.messages();
    }
}

} // namespace

TEST(Document, YamlScalarsFollowTheCoreSchemaNotYaml11) {
    Document d = parse_document(R"(
a: no
b: 0755
c: 0x1F
d: 1.5e3
e: ~
f: "true"
g: True
h: -12
i: 2024-01-02
j: 'null'
k:
l: 18446744073709551615
m: .5
n: ${HOME}
)",
                                "t.yaml");
    bj::value want = bj::parse(R"({"a":"no","b":755,"c":31,"d":1500.0,"e":null,"f":"true","g":true,"h":-12,
        "i":"2024-01-02","j":"null","k":null,"l":18446744073709551615,"m":0.5,"n":"${HOME}"})");
    EXPECT_EQ(d.root, want) << bj::serialize(d.root);
}

TEST(Document, JsonAndItsYamlConversionAreTheSameValue) {
    const char *json = R"({"s":["true","123","",""," lead","trail ","a: b","#x","${X}","*a","& b","- x","null",
        "multi\nline","tab\there","ünï","!tag","@at","`tick","%p","{b}","[a]","-","?","0o17","1e5",".inf","~","yes"],
        "n":[0,-1,1.25,1e300,18446744073709551615],"b":[true,false,null],"e":{},"ea":[],"k":{"key: colon":1,"":2,"1":3}})";
    bj::value v = bj::parse(json);
    std::string yaml = to_yaml(v);
    Document back = parse_document(yaml, "x.yml");
    EXPECT_EQ(back.root, v) << yaml;
    EXPECT_EQ(bj::parse(to_pretty_json(v)), v);
}

TEST(Document, YamlMessagesSayFileLineAndColumn) {
    EXPECT_EQ(error_of("a: [1, 2\nb: 3\n", "m.yaml").rfind("m.yaml:2:", 0), 0u) << error_of("a: [1, 2\nb: 3\n", "m.yaml");
    EXPECT_EQ(error_of("a: 1\nb: 2\na: 3\n", "m.yaml"), "m.yaml:3:1: duplicate key 'a'");
    EXPECT_EQ(error_of("a: 1\n---\nb: 2\n", "m.yml"),
              "m.yml:2:1: YAML syntax error: a second document, or text after the document's value (a ',' after "
              "it?); a file holds one");
    EXPECT_EQ(error_of("a: .inf\n", "m.yaml"), "m.yaml:1:4: '.inf' has no JSON equivalent (quote it to mean the text)");
    EXPECT_EQ(error_of("? [a, b]\n: 1\n", "m.yaml"), "m.yaml:1:3: a key must be a string");
    EXPECT_EQ(error_of("{\"a\": 1,}", "m.json").rfind("m.json:1:", 0), 0u);
    // yaml-cpp 0.7 would never return on these (found by the fuzzer).
    for (const char *never_returned : {"{a: 1},\n", ",", "- 1\n,", "# c\n--- &x ['it''s', \"]\"] # c\n  ,", "{\"\":t\",\"\":\"\"},\ne"})
        EXPECT_NE(error_of(never_returned, "m.yaml").find("a second document, or text after the document's value"),
                  std::string::npos)
            << never_returned;
}

TEST(Document, MergeKeysGiveTheKeysAMapDoesNotSet) {
    Document d = parse_document(R"(
base: &base {threads: 2, batch_size: 10}
other: &other {threads: 9, timeout_ms: 5}
stage:
  <<: [*base, *other]
  batch_size: 20
)",
                                "m.yaml");
    EXPECT_EQ(d.root.at("stage"), bj::parse(R"({"batch_size":20,"threads":2,"timeout_ms":5})"));
}

TEST(Document, AliasesThatExpandTooFarAreRefused) {
    std::string bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n";
    char prev = 'a';
    for (char c = 'b'; c <= 'h'; ++c, ++prev) {
        bomb += std::string(1, c) + ": &" + c + " [";
        for (int i = 0; i < 10; ++i) bomb += std::string(i ? ", " : "") + "*" + prev;
        bomb += "]\n";
    }
    EXPECT_NE(error_of(bomb, "bomb.yaml").find("more than 100000 values"), std::string::npos);
}

TEST(Document, LocateFallsBackToTheEnclosingPath) {
    Document d = parse_document("stages:\n  - id: a\n    kind: extractor\n", "m.yaml");
    EXPECT_EQ(d.locate("/stages/0/kind"), "3:11");
    EXPECT_EQ(d.locate("/stages/0/plugin"), "2:5");
    EXPECT_EQ(parse_document("{}", "m.json").locate("/stages"), "");
}

TEST(Document, AYamlManifestHasTheSameMessagesAsJsonWithAPosition) {
    const char *json = R"({"stages":[{"id":"in","kind":"extractor","plugin":"generate","threads":0},
        {"id":"out","kind":"loadr","plugin":"null"}],"bogus":1})";
    const char *yaml = R"(stages:
  - id: in
    kind: extractor
    plugin: generate
    threads: 0
  - id: out
    kind: loadr
    plugin: "null"
bogus: 1
)";
    std::vector<std::string> from_json = manifest_errors(json, "m.json");
    std::vector<std::string> from_yaml = manifest_errors(yaml, "m.yaml");
    ASSERT_EQ(from_json.size(), 3u);
    ASSERT_EQ(from_yaml.size(), 3u);
    EXPECT_EQ(from_json[0], "m.json: /bogus: unknown key (expected one of: name, description, plugin_dirs, allow_untrusted_plugins, state_dir, "
                            "checkpoint_interval_ms, memory_limit_mb, max_error_rate, min_quality, "
                            "fail_if_nothing_loaded, admin, defaults, stages)");
    EXPECT_EQ(from_yaml[0].rfind("m.yaml:9:1: /bogus: unknown key", 0), 0u) << from_yaml[0];
    for (size_t i = 0; i < 3; ++i) {
        std::string j = from_json[i].substr(from_json[i].find(": /") + 2);
        std::string y = from_yaml[i].substr(from_yaml[i].find(": /") + 2);
        EXPECT_EQ(j, y);
    }
    EXPECT_EQ(from_yaml[1].rfind("m.yaml:5:14: /stages/0/threads: expected a positive integer", 0), 0u) << from_yaml[1];
    EXPECT_EQ(from_yaml[2].rfind("m.yaml:7:11: /stages/1/kind: unknown kind 'loadr'", 0), 0u) << from_yaml[2];
}

TEST(Document, TopLevelKeysStartingWithXAreTheUsersOwn) {
    EXPECT_TRUE(manifest_errors(R"({"x-notes":"anything","stages":[{"id":"in","kind":"extractor","plugin":"generate"},
        {"id":"out","kind":"loader","plugin":"null"}]})",
                                "m.json")
                    .empty());
}
