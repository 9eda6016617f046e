// The one-declaration config (sluice/config_spec.hpp): the schema the host
// checks, the defaults the constructor gets and the tables the docs show all
// come from the same fields.
#include "config_table.hpp"

#include <sluice/config_spec.hpp>
#include <sluice/json_schema.hpp>

#include <gtest/gtest.h>

using namespace sluice;
namespace bj = boost::json;
using config::Field;

namespace {

config::Spec sample() {
    config::Spec rule{
        Field::string("field", "Field to check").required().not_empty(),
        Field::boolean("required", "Must be present").default_to(false),
    };
    return config::Spec{
        Field::string("path", "File to read").required().not_empty(),
        Field::choice("format", {"csv", "ndjson"}, "How to parse it").default_to("ndjson"),
        Field::integer("limit", "At most this many | records").minimum(1).maximum(10).default_to(5),
        Field::string("password_env", "Where the password is").secret(),
        Field::list("rules", rule, "Checks"),
    }
        .include(config::retry("per request on 5xx"));
}

} // namespace

TEST(ConfigSpec, DeclaresTheSchemaTheHostChecks) {
    bj::value schema = sample().schema();
    EXPECT_EQ(schema.at("required"), bj::array{"path"});
    const bj::object &p = schema.at("properties").as_object();
    EXPECT_EQ(p.at("format").at("enum"), (bj::array{"csv", "ndjson"}));
    EXPECT_EQ(p.at("limit").at("minimum"), 1);
    EXPECT_EQ(p.at("limit").at("maximum"), 10);
    EXPECT_EQ(p.at("password_env").at("secret"), true);
    EXPECT_EQ(p.at("rules").at("items").at("required"), bj::array{"field"});
    EXPECT_EQ(p.at("retry").at("properties").at("backoff_ms").at("default"), 500);

    // What the host says of a config that breaks it (closed objects, as for
    // every stage config).
    auto problems = json::check_schema(bj::parse(R"({"path": "", "limit": 11, "colour": 1, "rules": [{}]})"), schema,
                                       "/config", true);
    std::sort(problems.begin(), problems.end());
    EXPECT_EQ(problems, (std::vector<std::string>{
                            "/config/colour: unknown key (expected one of: path, format, limit, password_env, rules, retry)",
                            "/config/limit: must be at most 10", "/config/path: must not be empty",
                            "/config/rules/0/field: required key is missing"}));
}

TEST(ConfigSpec, FillsInEveryDefaultTheConstructorReads) {
    bj::value c = bj::parse(sample().with_defaults(R"({"path": "a", "limit": 7, "rules": [{"field": "x"}],
                                                        "retry": {"max_attempts": 2}})"));
    EXPECT_EQ(c.at("format"), "ndjson");
    EXPECT_EQ(c.at("limit"), 7) << "what is given stays";
    EXPECT_EQ(c.at("rules").at(0).at("required"), false) << "in the objects of a list";
    EXPECT_EQ(c.at("retry").at("max_attempts"), 2);
    EXPECT_EQ(c.at("retry").at("max_backoff_ms"), 30000) << "in a nested object";
    EXPECT_FALSE(c.as_object().contains("password_env")) << "no default, not made up";

    // An absent object with a default is made, then filled.
    bj::value d = bj::parse(sample().with_defaults(R"({"path": "a"})"));
    EXPECT_EQ(d.at("retry"), bj::parse(R"({"max_attempts": 5, "backoff_ms": 500, "max_backoff_ms": 30000})"));
    EXPECT_FALSE(d.as_object().contains("rules"));

    json::Config config(sample().with_defaults(R"({"path": "a"})"));
    EXPECT_EQ(config.integer("limit"), 5);
    config::RetrySettings retry = config::RetrySettings::read(config);
    EXPECT_EQ(retry.max_attempts, 5);
    EXPECT_EQ(retry.backoff.count(), 500);
    EXPECT_EQ(retry.max_backoff.count(), 30000);
}

TEST(ConfigSpec, ABrokenConfigIsOneLineNamingTheField) {
    auto error = [](const char *config) {
        try {
            sample().with_defaults(config);
        } catch (const Error &e) {
            return std::string(e.what());
        }
        return std::string("no error");
    };
    EXPECT_EQ(error(R"({"path": "a", "rules": [{"field": "x"}, {"field": 3}]})"), "rules[1].field: expected a string");
    EXPECT_EQ(error(R"({"path": "a", "retry": {"backoff_ms": 0}})"), "retry.backoff_ms: must be at least 1");
    EXPECT_EQ(error(R"({})"), "path: required key is missing");
    EXPECT_EQ(sample().with_defaults("not json"), "not json") << "left to the plugin's parser to report";
}

TEST(ConfigSpec, AGetterWithoutADefaultNamesAMissingField) {
    json::Config c(R"({"a": 1})");
    EXPECT_EQ(c.integer("a"), 1);
    try {
        c.child("retry").integer("max_attempts");
        FAIL() << "no error";
    } catch (const Error &e) {
        EXPECT_STREQ(e.what(), "retry.max_attempts: missing");
    }
}

TEST(ConfigTable, ShowsEveryFieldNestedOnesTooAsTheDocsPrintThem) {
    std::vector<ConfigRow> rows = config_rows(bj::value(sample().schema()));
    std::vector<std::string> keys;
    for (const auto &r : rows) keys.push_back(r.key);
    EXPECT_EQ(keys, (std::vector<std::string>{"path", "format", "limit", "password_env", "rules", "rules[].field",
                                              "rules[].required", "retry", "retry.max_attempts", "retry.backoff_ms",
                                              "retry.max_backoff_ms"}));
    std::string md = config_rows_markdown(rows);
    EXPECT_NE(md.find("| `path` | string | required | File to read |\n"), std::string::npos) << md;
    EXPECT_NE(md.find("| `format` | `csv`, `ndjson` | `ndjson` | How to parse it |\n"), std::string::npos) << md;
    EXPECT_NE(md.find("| `limit` | integer | `5` | At most this many \\| records (at least 1, at most 10) |\n"),
              std::string::npos)
        << "a | in a description cannot break the table: " << md;
    EXPECT_NE(md.find("| `password_env` | string (secret) |  | Where the password is |\n"), std::string::npos) << md;
    EXPECT_NE(md.find("| `rules` | array of objects |  | Checks |\n"), std::string::npos) << md;
    EXPECT_NE(md.find("| `retry` | object |  | Tries per request on 5xx"), std::string::npos)
        << "an object defaulted to {} shows its fields' defaults, not {}: " << md;

    std::string text = config_rows_text(rows, "  ");
    EXPECT_NE(text.find("limit                 integer          At most this many | records (default 5; at least 1, "
                        "at most 10)\n"),
              std::string::npos)
        << text;
}

// The host fills in defaults of any schema (a C plugin's too) the same way.
TEST(ConfigSpec, ApplyDefaultsLeavesWhatIsThereAndMayRunTwice) {
    bj::value schema = bj::parse(R"({"type": "object", "properties": {
        "a": {"type": "integer", "default": 1},
        "o": {"type": "object", "default": {}, "properties": {"b": {"type": "string", "default": "x"}}},
        "l": {"type": "array", "items": {"type": "object", "properties": {"c": {"type": "boolean", "default": true}}}}}})");
    bj::value v = bj::parse(R"({"a": 2, "l": [{}, {"c": false}, 3]})");
    json::apply_defaults(v, schema);
    json::apply_defaults(v, schema);
    EXPECT_EQ(v, bj::parse(R"({"a": 2, "l": [{"c": true}, {"c": false}, 3], "o": {"b": "x"}})"));
}
