// The one-pass field reader that map, rules and route share
// (plugins/common/json_fields.hpp): spans as written, what it refuses.
#include "../../plugins/common/json_fields.hpp"

#include <gtest/gtest.h>

using namespace sluice::plugins;

namespace {

std::vector<std::string> read_ok(JsonFields &f, std::string_view text) {
    std::string error;
    EXPECT_TRUE(f.read(text, error)) << text << ": " << error;
    std::vector<std::string> out;
    for (const JsonField &field : f.fields()) out.push_back(std::string(field.key) + "=" + std::string(field.text));
    return out;
}

std::string read_error(std::string_view text) {
    JsonFields f;
    std::string error;
    EXPECT_FALSE(f.read(text, error)) << text;
    return error;
}

} // namespace

TEST(JsonFields, ValuesAreTheirTextAsWrittenAndPointIntoTheRecord) {
    JsonFields f;
    std::string record = R"( { "a" : -0 , "b":1e-400,"c" :[1, {"x": 2}] ,"d":{"e":"f"},"s":"q\"\u00e9","n":null } )";
    EXPECT_EQ(read_ok(f, record), (std::vector<std::string>{"a=-0", "b=1e-400", R"(c=[1, {"x": 2}])", R"(d={"e":"f"})",
                                                             R"(s="q\"\u00e9")", "n=null"}));
    const JsonField *c = f.find("c");
    ASSERT_NE(c, nullptr);
    EXPECT_GE(c->text.data(), record.data());
    EXPECT_LT(c->text.data(), record.data() + record.size()) << "views into the record, not a copy";
    EXPECT_EQ(f.find("zzz"), nullptr);
}

TEST(JsonFields, EscapedKeysAreDecodedAndKeepTheirRawText) {
    JsonFields f;
    read_ok(f, R"({"n\u00e9":1,"a\"b":2,"plain":3})");
    ASSERT_NE(f.find("né"), nullptr);
    EXPECT_EQ(f.find("né")->raw_key, "n\\u00e9");
    ASSERT_NE(f.find("a\"b"), nullptr);
    EXPECT_EQ(f.find("plain")->raw_key, "plain");
}

TEST(JsonFields, TheLastOfDuplicateKeysIsFound) {
    JsonFields f;
    read_ok(f, R"({"a":1,"b":2,"a":3})");
    EXPECT_EQ(f.find("a")->text, "3");
}

TEST(JsonFields, WhatIsNotOneWellFormedObjectIsRefusedWithAReason) {
    EXPECT_EQ(read_error("[1,2]"), "payload is not a JSON object");
    EXPECT_EQ(read_error("\"text\""), "payload is not a JSON object");
    EXPECT_EQ(read_error(R"({"a":tru})"), "invalid value of field 'a': tru");
    EXPECT_EQ(read_error(R"({"a":01})"), "invalid value of field 'a': 01");
    EXPECT_EQ(read_error(R"({"a":1.})"), "invalid value of field 'a': 1.");
    EXPECT_EQ(read_error(R"({"a":"\x"})"), R"(invalid value of field 'a': "\x")");
    EXPECT_EQ(read_error(R"({"a":"\u12"})"), R"(invalid value of field 'a': "\u12")");
    for (const char *bad : {R"({"a":1} x)", R"({"a":1}{"b":2})", R"({"a":1} 2)", "", "{", R"({"a":1,})", R"({"a" 1})", R"({"a":1 "b":2})", R"({a:1})", "{\"a\":\"\xff\"}",
                            "{\"a\":\"line\nbreak\"}", R"({"a":[1,2})"})
        EXPECT_FALSE(read_error(bad).empty()) << bad;
}

TEST(JsonFields, ReusedReadsDoNotMixRecords) {
    JsonFields f;
    read_ok(f, R"({"a":1,"b":2,"c":3,"n\u00e9":4})");
    EXPECT_EQ(read_ok(f, R"({"z":9})"), std::vector<std::string>{"z=9"});
    EXPECT_EQ(f.find("a"), nullptr);
}

TEST(JsonValueReader, DecodesOnlyWhatIsAskedAndComparesAsADomWould) {
    JsonValueReader v;
    EXPECT_EQ(v.string(R"("plain")"), "plain");
    EXPECT_EQ(v.string(R"("caf\u00e9 \"x\"")"), "café \"x\"");
    EXPECT_EQ(JsonValueReader::number("1e400"), HUGE_VAL);
    EXPECT_EQ(JsonValueReader::number("-2.5E1"), -25.0);
    EXPECT_TRUE(JsonValueReader::is_integer("3.0"));
    EXPECT_TRUE(JsonValueReader::is_integer("123456789012345678901234567890"));
    EXPECT_FALSE(JsonValueReader::is_integer("1.5"));
    EXPECT_TRUE(v.equals(R"("US")", boost::json::value("US")));
    EXPECT_TRUE(v.equals(R"("\u0055S")", boost::json::value("US")));
    EXPECT_FALSE(v.equals("1", boost::json::value("1")));
    EXPECT_TRUE(v.equals("1", boost::json::value(1)));
    EXPECT_FALSE(v.equals("1.0", boost::json::value(1))) << "a double is not an integer to a DOM";
    EXPECT_TRUE(v.equals("true", boost::json::value(true)));
    EXPECT_TRUE(v.equals("null", boost::json::value(nullptr)));
    EXPECT_TRUE(v.equals(R"([1, {"a": "b"}])", boost::json::parse(R"([1,{"a":"b"}])")));
    EXPECT_EQ(v.value("[1,tru]"), nullptr) << "nested values are only delimited by read(): decoding checks them";
    EXPECT_FALSE(v.equals("[1,tru]", boost::json::parse("[1,true]")));
}
