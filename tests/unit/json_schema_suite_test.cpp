// The host's JSON Schema checker (sluice/json_schema.hpp) against the
// official JSON-Schema-Test-Suite, draft 7 (Debian package
// json-schema-test-suite), for every keyword the checker claims. A test
// group whose schema uses a keyword the checker does not claim is left out
// (and counted): the checker ignores those keywords by design.
#include <sluice/json_schema.hpp>

#include <boost/json.hpp>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

namespace bj = boost::json;

namespace {

const std::set<std::string> kClaimed = {"type",    "properties", "required",  "additionalProperties", "items",
                                        "enum",    "minimum",    "maximum",   "minLength",            "maxLength",
                                        "default", "description", "$schema", "title"};

// Whether every keyword in `schema`, at any depth, is one the checker claims.
bool only_claimed(const bj::value &schema) {
    if (schema.is_bool()) return true;
    if (!schema.is_object()) return true;
    for (const auto &kv : schema.get_object()) {
        const std::string key(kv.key());
        if (!kClaimed.count(key)) return false;
        if (key == "properties" && kv.value().is_object()) {
            for (const auto &p : kv.value().get_object())
                if (!only_claimed(p.value())) return false;
        } else if (key == "items" || key == "additionalProperties") {
            if (kv.value().is_array()) return false; // the tuple form of items is not claimed
            if (!only_claimed(kv.value())) return false;
        }
    }
    return true;
}

} // namespace

TEST(JsonSchemaSuite, EveryClaimedKeywordPassesTheOfficialDraft7Tests) {
    const std::filesystem::path dir = SLUICE_JSON_SCHEMA_SUITE;
    ASSERT_TRUE(std::filesystem::is_directory(dir))
        << dir << " is missing: install the json-schema-test-suite package (packaging/install-deps.sh does)";
    int run = 0, skipped = 0;
    std::vector<std::string> failures;
    for (const char *file : {"type", "properties", "required", "additionalProperties", "items", "enum", "minimum",
                             "maximum", "minLength", "maxLength", "boolean_schema"}) {
        std::ifstream in(dir / (std::string(file) + ".json"));
        ASSERT_TRUE(in) << file;
        std::stringstream text;
        text << in.rdbuf();
        const bj::value groups = bj::parse(text.str());
        for (const bj::value &group : groups.as_array()) {
            const bj::value &schema = group.at("schema");
            const bj::array &tests = group.at("tests").as_array();
            if (!only_claimed(schema)) {
                skipped += int(tests.size());
                continue;
            }
            for (const bj::value &t : tests) {
                ++run;
                const bool valid = sluice::json::check_schema(t.at("data"), schema).empty();
                if (valid != t.at("valid").as_bool())
                    failures.push_back(std::string(file) + ": " + std::string(group.at("description").as_string()) +
                                       ": " + std::string(t.at("description").as_string()) + " (data " +
                                       bj::serialize(t.at("data")) + ")");
            }
        }
    }
    std::string list;
    for (const auto &f : failures) list += "\n  " + f;
    EXPECT_TRUE(failures.empty()) << failures.size() << " of " << run << " cases fail:" << list;
    EXPECT_GE(run, 100) << "too few cases ran for the test to mean anything";
    std::cout << "JSON-Schema-Test-Suite draft 7: " << run - int(failures.size()) << " of " << run
              << " cases pass; " << skipped << " left out (keywords not claimed)\n";
}
