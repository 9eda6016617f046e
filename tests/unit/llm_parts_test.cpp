// Pieces of the llm plugin that need no server: answer checking, prompt
// templates, base URLs, rate limiting and latency percentiles.
#include "answer_check.hpp"
#include "endpoint.hpp"
#include "latency_histogram.hpp"
#include "prompt_template.hpp"
#include "token_bucket.hpp"

#include <gtest/gtest.h>

using namespace sluice::plugins::llm;
namespace bj = boost::json;

TEST(LlmAnswer, JsonInACodeFenceIsCheckedAgainstTheSchema) {
    bj::value schema = bj::parse(R"({"type":"object","properties":{"score":{"type":"number"}},"required":["score"]})");
    bj::value out;
    EXPECT_EQ(parse_answer("```json\n{\"score\": 3}\n```", schema, out), "");
    EXPECT_EQ(out.at("score").as_int64(), 3);
    EXPECT_EQ(parse_answer("{\"score\": \"high\"}", schema, out),
              "the answer does not match the schema: /score: expected a number");
    EXPECT_EQ(parse_answer("{}", schema, out), "the answer does not match the schema: /score: required key is missing");
    EXPECT_EQ(parse_answer("{\"score\": 1, \"extra\": true}", schema, out), "") << "other keys are allowed";
    EXPECT_EQ(parse_answer("Sure! {", schema, out).rfind("the answer is not valid JSON (", 0), 0u);
}

TEST(LlmPrompt, FieldsPathsAndTheWholeRecord) {
    bj::object r = bj::parse(R"({"name":"Ann","n":3,"address":{"city":"Oslo"},"none":null})").as_object();
    EXPECT_EQ(PromptTemplate("Hi {{name}} ({{ n }}) from {{address.city}}{{missing}}{{none}}.").render(r),
              "Hi Ann (3) from Oslo.");
    EXPECT_EQ(PromptTemplate("{{record}}").render(r, "RAW"), "RAW");
    EXPECT_THROW(PromptTemplate("oops {{name"), std::invalid_argument);
}

TEST(LlmEndpoint, BaseUrls) {
    Endpoint a = Endpoint::parse("http://localhost:11434");
    EXPECT_FALSE(a.tls);
    EXPECT_EQ(a.host, "localhost");
    EXPECT_EQ(a.port, "11434");
    EXPECT_EQ(a.path_prefix, "");
    Endpoint b = Endpoint::parse("https://api.openai.com/v1/");
    EXPECT_TRUE(b.tls);
    EXPECT_EQ(b.port, "443");
    EXPECT_EQ(b.path_prefix, "") << "a trailing /v1 is the API version, added per request";
    EXPECT_EQ(Endpoint::parse("http://gw.local/openai").path_prefix, "/openai");
    EXPECT_THROW(Endpoint::parse("ftp://x"), std::invalid_argument);
    EXPECT_THROW(Endpoint::parse("http://host:abc"), std::invalid_argument);
}

TEST(LlmTokenBucket, ReservationsQueueAtTheRate) {
    TokenBucket unlimited(0, 0);
    EXPECT_EQ(unlimited.take(1e9).count(), 0);
    TokenBucket rps(10, 1); // 10 a second, no burst beyond one
    EXPECT_EQ(rps.take(1).count(), 0);
    auto second = rps.take(1).count(), third = rps.take(1).count();
    EXPECT_GE(second, 80);
    EXPECT_LE(second, 101);
    EXPECT_GE(third, 195) << "each waiting caller is a tenth of a second behind the one before";
}

TEST(LlmLatency, PercentilesFromBuckets) {
    LatencyHistogram h;
    EXPECT_EQ(h.percentile(0.5), 0);
    for (int i = 1; i <= 100; ++i) h.record(i);
    EXPECT_NEAR(h.percentile(0.5), 50, 3);
    EXPECT_NEAR(h.percentile(0.99), 99, 4);
    EXPECT_EQ(h.count(), 100u);
}

TEST(LlmTokenBucket, ACostAboveCapacityWaitsInProportionAndCanBeCorrected) {
    TokenBucket tpm(100, 100); // 100 tokens a second
    EXPECT_EQ(tpm.take(100).count(), 0);
    auto wait = tpm.take(300).count();
    EXPECT_GE(wait, 2900);
    EXPECT_LE(wait, 3001);
    tpm.adjust(250); // it cost 50, not 300
    EXPECT_LE(tpm.take(0).count(), 501);
}
