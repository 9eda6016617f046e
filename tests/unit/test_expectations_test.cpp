// The checks behind `sluice test`: how records are compared and what the
// messages say when they differ.
#include "test_expectations.hpp"

#include <gtest/gtest.h>

using namespace sluice;
namespace bj = boost::json;

namespace {

Expectation expectation(const std::string &json) {
    std::vector<std::string> problems;
    Expectation e = parse_expectation(bj::parse(json), "/tests/0/expect/0", problems);
    EXPECT_TRUE(problems.empty()) << problems.front();
    return e;
}

std::vector<CapturedRecord> records(std::initializer_list<const char *> payloads) {
    std::vector<CapturedRecord> out;
    for (const char *p : payloads) out.push_back({p, "", {}});
    return out;
}

} // namespace

TEST(TestExpectations, NumbersCompareByValueAndObjectsExactlyUnlessPartial) {
    std::string where;
    EXPECT_TRUE(json_matches(bj::parse("1"), bj::parse("1.0"), false, where));
    EXPECT_FALSE(json_matches(bj::parse("1"), bj::parse("\"1\""), false, where));
    EXPECT_EQ(where, "/: expected 1, got \"1\"");
    EXPECT_FALSE(json_matches(bj::parse(R"({"a":1})"), bj::parse(R"({"a":1,"b":2})"), false, where));
    EXPECT_EQ(where, "/b: not expected (got 2)");
    EXPECT_TRUE(json_matches(bj::parse(R"({"a":1})"), bj::parse(R"({"a":1,"b":2})"), true, where));
    EXPECT_FALSE(json_matches(bj::parse(R"({"a":{"c":[1,2]}})"), bj::parse(R"({"a":{"c":[1,3]}})"), true, where));
    EXPECT_EQ(where, "/a/c/1: expected 2, got 3");
    EXPECT_FALSE(json_matches(bj::parse(R"({"x":0.1})"), bj::parse(R"({})"), true, where));
    EXPECT_EQ(where, "/x: missing (expected 0.1)");
}

TEST(TestExpectations, ExactRecordsInOrderOrAnyOrder) {
    auto got = records({R"({"id":2})", R"({"id":1})"});
    EXPECT_TRUE(check_records(expectation(R"({"stage":"s","records":[{"id":2},{"id":1}]})"), got).empty());
    auto ordered = check_records(expectation(R"({"stage":"s","records":[{"id":1},{"id":2}]})"), got);
    ASSERT_EQ(ordered.size(), 1u);
    EXPECT_NE(ordered[0].find("record 1: /id: expected 1, got 2"), std::string::npos) << ordered[0];
    EXPECT_TRUE(check_records(expectation(R"({"stage":"s","unordered":true,"records":[{"id":1},{"id":2}]})"), got).empty());
    auto missing = check_records(expectation(R"({"stage":"s","unordered":true,"records":[{"id":1},{"id":3}]})"), got);
    ASSERT_EQ(missing.size(), 1u);
    EXPECT_NE(missing[0].find("- {\"id\":3}"), std::string::npos) << missing[0];
    EXPECT_NE(missing[0].find("+ {\"id\":2}"), std::string::npos) << missing[0];
}

TEST(TestExpectations, ConditionsOnFieldsAndAttributes) {
    std::vector<CapturedRecord> got = records({R"({"a":{"b":5},"s":"hello"})", R"({"a":{"b":50},"s":"bye"})"});
    got[0].attributes = {{"reject_reason", "too big"}};
    EXPECT_TRUE(check_records(expectation(R"({"stage":"s","each":[{"field":"a.b","type":"integer","min":1,"max":50},
        {"field":"/s","matches":"^(hello|bye)$"},{"field":"zz","exists":false}]})"),
                              got)
                    .empty());
    auto over = check_records(expectation(R"({"stage":"s","each":[{"field":"a.b","max":10}]})"), got);
    ASSERT_EQ(over.size(), 1u);
    EXPECT_EQ(over[0], "each/0: 1 record of 2 fails this condition; record 2: a.b: 50 is above the maximum 10");
    auto attr = check_records(expectation(R"({"stage":"s","each":[{"attribute":"reject_reason","contains":"big"}]})"), got);
    ASSERT_EQ(attr.size(), 1u);
    EXPECT_EQ(attr[0], "each/0: 1 record of 2 fails this condition; record 2: attribute reject_reason: is missing");
    auto count = check_records(expectation(R"({"stage":"s","count":1})"), got);
    ASSERT_EQ(count.size(), 1u);
    EXPECT_EQ(count[0].rfind("expected 1 record, got 2:", 0), 0u) << count[0];
}

TEST(TestExpectations, ReasonsAreAMultiset) {
    bj::array reported = bj::parse(R"([{"reason":"a","count":2},{"reason":"b","count":1}])").as_array();
    EXPECT_TRUE(check_reasons("reject", {"a", "b", "a"}, reported).empty());
    auto diff = check_reasons("reject", {"a", "c"}, reported);
    ASSERT_EQ(diff.size(), 1u);
    EXPECT_EQ(diff[0], "reject reasons differ (- expected but not seen, + seen but not expected):\n  - c\n  + a\n  + b");
}

TEST(TestExpectations, BadExpectationsAreNamedByPath) {
    std::vector<std::string> problems;
    parse_expectation(bj::parse(R"({"stage":"q.fail","rejected":["x"],"each":[{"field":"a","type":"text"}]})"),
                      "/tests/1/expect/2", problems);
    ASSERT_EQ(problems.size(), 2u);
    EXPECT_EQ(problems[0], "/tests/1/expect/2/each/0/type: unknown type 'text' (expected string, integer, number, "
                           "boolean, object, array or null)");
    EXPECT_EQ(problems[1], "/tests/1/expect/2/stage: rejected and errors are the stage's, not an output's: name the "
                           "stage alone");
}
