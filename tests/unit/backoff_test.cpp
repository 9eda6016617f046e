// sluice/backoff.hpp: the one backoff with jitter the host and the plugins use.
#include <sluice/backoff.hpp>

#include <gtest/gtest.h>

using namespace std::chrono_literals;

TEST(Backoff, DoublesFromTheBaseUpToTheCapWithUpToHalfAgainOfJitter) {
    for (int run = 0; run < 200; ++run) {
        auto first = sluice::backoff_delay(100ms, 2000ms, 1);
        EXPECT_GE(first, 100ms);
        EXPECT_LE(first, 150ms);
        auto third = sluice::backoff_delay(100ms, 2000ms, 3);
        EXPECT_GE(third, 400ms);
        EXPECT_LE(third, 600ms);
        auto late = sluice::backoff_delay(100ms, 2000ms, 40);
        EXPECT_GE(late, 2000ms);
        EXPECT_LE(late, 3000ms);
    }
    EXPECT_EQ(sluice::backoff_delay(0ms, 2000ms, 5), 0ms);
}
