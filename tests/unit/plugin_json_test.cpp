// sluice/plugin_json.h: the C helpers read fields by length, never past the
// text, and build objects that parse.
#include <sluice/plugin_json.h>

#include <boost/json.hpp>
#include <gtest/gtest.h>

#include <string>

namespace {

std::string get_string(const std::string &json, const char *key) {
    char buf[64];
    long n = sluice_json_get_string(json.data(), json.size(), key, buf, sizeof buf);
    return n < 0 ? "<none>" : std::string(buf, size_t(n));
}

} // namespace

TEST(PluginJson, ReadsTopLevelFieldsOnly) {
    const std::string j = R"( {"a": {"x": 1, "name": "inner"}, "name": "top \"q\" \u00e9\ud83d\ude00\n", "n": -12.5e1,
                              "t": true, "f": false, "s": "7", "list": [1, {"n": 2}, "]"]} )";
    EXPECT_EQ(get_string(j, "name"), "top \"q\" \xc3\xa9\xf0\x9f\x98\x80\n");
    double d = 0;
    ASSERT_TRUE(sluice_json_get_number(j.data(), j.size(), "n", &d));
    EXPECT_DOUBLE_EQ(d, -125.0);
    EXPECT_FALSE(sluice_json_get_number(j.data(), j.size(), "s", &d)) << "a string is not a number";
    EXPECT_FALSE(sluice_json_get_number(j.data(), j.size(), "x", &d)) << "nested keys are not top-level";
    int b = -1;
    ASSERT_TRUE(sluice_json_get_bool(j.data(), j.size(), "t", &b));
    EXPECT_EQ(b, 1);
    ASSERT_TRUE(sluice_json_get_bool(j.data(), j.size(), "f", &b));
    EXPECT_EQ(b, 0);
    EXPECT_TRUE(sluice_json_has(j.data(), j.size(), "list"));
    EXPECT_FALSE(sluice_json_has(j.data(), j.size(), "missing"));
    EXPECT_EQ(get_string(j, "a"), "<none>") << "an object is not a string";
}

TEST(PluginJson, NeverReadsPastTheEndOrAcceptsBrokenText) {
    const std::string j = R"({"name":"abc","n":42,"deep":{"k":[1,2,{"z":"}"}]},"last":"x"})";
    // Every prefix is a truncated payload: nothing found beyond what fits,
    // and no read past the cut (ASan would say).
    for (size_t cut = 0; cut < j.size(); ++cut) {
        std::string part = j.substr(0, cut); // its own allocation, exactly cut bytes
        double d;
        char buf[16];
        sluice_json_get_number(part.data(), part.size(), "n", &d);
        sluice_json_get_string(part.data(), part.size(), "last", buf, sizeof buf);
        EXPECT_FALSE(sluice_json_has(part.data(), part.size(), "last") && cut < j.size() - 4) << cut;
    }
    EXPECT_EQ(get_string(R"(["name","x"])", "name"), "<none>") << "not an object";
    EXPECT_EQ(get_string(R"({"name":"\ud800"})", "name"), "<none>") << "a lone surrogate";
    EXPECT_EQ(get_string(R"({"name":"\q"})", "name"), "<none>") << "a bad escape";
    EXPECT_EQ(get_string(R"({"name":"this is far longer than sixty-three bytes, the size of the buffer given"})", "name"),
              "<none>");
}

TEST(PluginJson, BuildsObjectsThatParseFromScratchAndFromARecord) {
    sluice_json_builder b{};
    sluice_json_begin(&b);
    sluice_json_add_string(&b, "s", "a\"b\\c\n\x01", 7);
    sluice_json_add_number(&b, "n", 0.1);
    sluice_json_add_number(&b, "nan", 0.0 / 0.0);
    sluice_json_add_bool(&b, "t", 1);
    sluice_json_add_raw(&b, "o", "{\"k\":[1]}", 9);
    sluice_json_end(&b);
    ASSERT_FALSE(b.failed);
    boost::json::value v = boost::json::parse(std::string(b.buf, b.len));
    EXPECT_EQ(v.at("s").as_string(), "a\"b\\c\n\x01");
    EXPECT_EQ(std::string(b.buf, b.len).find("\"n\":0.1,"), std::string(b.buf, b.len).find("\"n\":")) << b.buf;
    EXPECT_TRUE(v.at("nan").is_null());
    EXPECT_EQ(v.at("o").at("k").as_array().size(), 1u);

    const std::string record = " {\"id\": 7} \n";
    sluice_json_begin_from(&b, record.data(), record.size());
    sluice_json_add_bool(&b, "ok", 0);
    sluice_json_end(&b);
    EXPECT_EQ(std::string(b.buf, b.len), "{\"id\": 7,\"ok\":false}");
    sluice_json_begin_from(&b, "{ }", 3);
    sluice_json_add_bool(&b, "ok", 1);
    sluice_json_end(&b);
    EXPECT_EQ(std::string(b.buf, b.len), "{ \"ok\":true}");
    sluice_json_begin_from(&b, "[1]", 3);
    EXPECT_TRUE(b.failed) << "not an object";
    sluice_json_free(&b);
}
