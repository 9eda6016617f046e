#include "config_schema.hpp"

#include <gtest/gtest.h>

using namespace sluice;
namespace bj = boost::json;

namespace {
const char *kSchema = R"({
  "type": "object",
  "required": ["path"],
  "properties": {
    "path": {"type": "string", "minLength": 1},
    "format": {"type": "string", "enum": ["csv", "ndjson"]},
    "limit": {"type": "integer", "minimum": 1, "maximum": 10},
    "ratio": {"type": "number"},
    "flag": {"type": "boolean"},
    "names": {"type": "array", "items": {"type": "string"}},
    "map": {"type": "object", "additionalProperties": {"type": "string"}},
    "any": {"type": ["string", "null"]}
  }
})";

std::vector<std::string> check(const std::string &config) {
    return check_against_schema(bj::parse(config), bj::parse(kSchema), "/stages/1/config");
}
} // namespace

TEST(ConfigSchema, AcceptsAValidConfig) {
    EXPECT_TRUE(check(R"({"path":"a","format":"csv","limit":3,"ratio":0.5,"flag":true,"names":["x"],
                          "map":{"a":"b"},"any":null})")
                    .empty());
}

TEST(ConfigSchema, NamesThePathOfEachProblem) {
    EXPECT_EQ(check(R"({})"), std::vector<std::string>{"/stages/1/config/path: required key is missing"});
    EXPECT_EQ(check(R"({"path":""})"), std::vector<std::string>{"/stages/1/config/path: must not be empty"});
    EXPECT_EQ(check(R"({"path":1})"), std::vector<std::string>{"/stages/1/config/path: expected a string"});
    EXPECT_EQ(check(R"({"path":"a","format":"xml"})"),
              std::vector<std::string>{"/stages/1/config/format: \"xml\" is not one of \"csv\", \"ndjson\""});
    EXPECT_EQ(check(R"({"path":"a","limit":1.5})"), std::vector<std::string>{"/stages/1/config/limit: expected an integer"});
    EXPECT_EQ(check(R"({"path":"a","limit":0})"), std::vector<std::string>{"/stages/1/config/limit: must be at least 1"});
    EXPECT_EQ(check(R"({"path":"a","limit":11})"), std::vector<std::string>{"/stages/1/config/limit: must be at most 10"});
    EXPECT_EQ(check(R"({"path":"a","flag":"yes"})"), std::vector<std::string>{"/stages/1/config/flag: expected true or false"});
    EXPECT_EQ(check(R"({"path":"a","names":["x",2]})"), std::vector<std::string>{"/stages/1/config/names/1: expected a string"});
    EXPECT_EQ(check(R"({"path":"a","map":{"k":1}})"), std::vector<std::string>{"/stages/1/config/map/k: expected a string"});
    EXPECT_EQ(check(R"({"path":"a","any":3})"), std::vector<std::string>{"/stages/1/config/any: expected a string or null"});
}

TEST(ConfigSchema, UnknownKeysListTheKnownOnes) {
    auto e = check(R"({"path":"a","pth":"b"})");
    ASSERT_EQ(e.size(), 1u);
    EXPECT_EQ(e[0], "/stages/1/config/pth: unknown key (expected one of: path, format, limit, ratio, flag, names, map, any)");
}
