// The http ingest's answers, without a server (plugins/http/ingest_request).
#include "ingest_request.hpp"

#include "gzip.hpp"

#include <gtest/gtest.h>

#include <set>

using namespace sluice::plugins::http;
using sluice::test::gzip;

TEST(IngestRequest, TheHeadAloneSettlesWrongPathsMethodsTokensSizesAndEncodings) {
    IngestSettings s;
    s.token = "secret";
    s.max_body_bytes = 100;
    IngestHead h{"POST", "/ingest?x=1", "Bearer secret", "", 10, "192.0.2.1"};
    EXPECT_FALSE(check_head(h, s));
    auto with = [&](auto change) {
        IngestHead c = h;
        change(c);
        auto a = check_head(c, s);
        return a ? a->status : 0;
    };
    EXPECT_EQ(with([](IngestHead &c) { c.target = "/other"; }), 404);
    EXPECT_EQ(with([](IngestHead &c) { c.method = "GET"; }), 405);
    EXPECT_EQ(with([](IngestHead &c) { c.authorization = "Bearer wrong"; }), 401);
    EXPECT_EQ(with([](IngestHead &c) { c.content_length = 101; }), 413);
    EXPECT_EQ(with([](IngestHead &c) { c.content_encoding = "br"; }), 415);
    EXPECT_EQ(with([](IngestHead &c) { c.content_encoding = "GZIP"; }), 0);
}

TEST(IngestRequest, EveryWrongTokenGetsTheSameAnswerAndAGuessingAddressIsThrottled) {
    IngestSettings s;
    s.token = "secret";
    sluice::AuthFailureThrottle throttle(5, std::chrono::seconds(60));
    std::set<std::string> answers;
    for (std::string_view auth : {"", "Bearer", "Bearer ", "Bearer wrong", "Basic c2VjcmV0"}) {
        IngestHead h{"POST", "/ingest", auth, "", 10, "192.0.2.7"};
        auto a = check_head(h, s, &throttle);
        ASSERT_TRUE(a);
        EXPECT_EQ(a->status, 401);
        answers.insert(a->body);
    }
    EXPECT_EQ(answers.size(), 1u) << "a 401 never says which part was wrong";
    // Five failures: that address is refused, even with the right token,
    // until a minute after its last failure; another address is not.
    IngestHead right{"POST", "/ingest", "Bearer secret", "", 10, "192.0.2.7"};
    auto refused = check_head(right, s, &throttle);
    ASSERT_TRUE(refused);
    EXPECT_EQ(refused->status, 429);
    EXPECT_EQ(refused->headers.at(0).first, "Retry-After");
    right.client = "192.0.2.8";
    EXPECT_FALSE(check_head(right, s, &throttle));
}

TEST(IngestRequest, BodiesAreInflatedWithinTheLimitParsedAndBuffered) {
    IngestSettings s;
    s.max_body_bytes = 20000;
    IngestBuffer buffer(3);
    IngestAnswer a = take_body("gzip", gzip("{\"a\":1}\n{\"a\":2}\n"), buffer, s);
    EXPECT_EQ(a.status, 0);
    EXPECT_EQ(a.wait_for, 2u) << "waits for its last record's delivery";
    EXPECT_EQ(a.accepted, 2u);
    EXPECT_EQ(take_body("gzip", gzip(std::string(1 << 20, ' ')), buffer, s).status, 413) << "a gzip bomb";
    IngestAnswer bad = take_body("gzip", "not gzip", buffer, s);
    EXPECT_EQ(bad.status, 400);
    EXPECT_NE(bad.body.find("the body is not valid gzip"), std::string::npos) << bad.body;
    IngestAnswer line = take_body("", "{\"a\":1}\n{oops}\n", buffer, s);
    EXPECT_EQ(line.status, 400);
    EXPECT_NE(line.body.find("line 2: invalid JSON"), std::string::npos) << line.body;
    IngestAnswer full = take_body("", "{\"a\":3}\n{\"a\":4}\n", buffer, s);
    EXPECT_EQ(full.status, 429);
    EXPECT_EQ(full.headers.at(0).first, "Retry-After");
    buffer.close();
    EXPECT_EQ(take_body("", "{\"a\":5}", buffer, s).status, 503);
}

TEST(IngestBuffer, WaitersHearOfDeliveryOrOfGivingUpOnce) {
    IngestBuffer buffer(10);
    uint64_t last = 0;
    ASSERT_EQ(buffer.push_all({"a", "b"}, last), IngestBuffer::Push::accepted);
    int heard = 0;
    buffer.when_delivered(last, [&] { ++heard; });
    buffer.delivered(1);
    EXPECT_EQ(heard, 0);
    buffer.delivered(2);
    EXPECT_EQ(heard, 1);
    buffer.when_delivered(2, [&] { ++heard; }); // already delivered: at once
    EXPECT_EQ(heard, 2);
    buffer.when_delivered(5, [&] { ++heard; });
    buffer.give_up();
    EXPECT_EQ(heard, 3);
    buffer.delivered(5);
    EXPECT_EQ(heard, 3);
}
