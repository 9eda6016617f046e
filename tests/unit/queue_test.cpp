#include "queue.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>

using namespace sluice;
using namespace std::chrono_literals;

namespace {
Batch batch(uint64_t seq, size_t records = 1) {
    Batch b;
    b.seq = seq;
    b.records.resize(records);
    return b;
}
} // namespace

TEST(BatchQueue, FifoUntilAllProducersAreDone) {
    BatchQueue q(4, false, 2);
    ASSERT_TRUE(q.push(batch(7)));
    ASSERT_TRUE(q.push(batch(3)));
    EXPECT_EQ(q.pop()->seq, 7u);
    q.producer_done();
    EXPECT_EQ(q.pop()->seq, 3u);
    q.producer_done();
    EXPECT_FALSE(q.pop().has_value()) << "closed and drained";
}

TEST(BatchQueue, AFullQueueBlocksItsProducer) {
    BatchQueue q(2, false, 1);
    q.push(batch(0));
    q.push(batch(1));
    std::atomic<bool> pushed{false};
    std::thread producer([&] {
        q.push(batch(2));
        pushed = true;
    });
    std::this_thread::sleep_for(50ms);
    EXPECT_FALSE(pushed) << "the third batch must wait for room";
    EXPECT_EQ(q.size(), 2u);
    q.pop();
    producer.join();
    EXPECT_TRUE(pushed);
    EXPECT_EQ(q.peak(), 2u);
}

TEST(BatchQueue, OrderedModeReleasesBatchesInSequence) {
    BatchQueue q(8, true, 1);
    for (uint64_t s : {2, 0, 3, 1}) q.push(batch(s));
    for (uint64_t s = 0; s < 4; ++s) EXPECT_EQ(q.pop()->seq, s);
}

TEST(BatchQueue, OrderedModeCannotDeadlockAndTheWindowBoundsIt) {
    // Four producers take sequence numbers from a window of 6 and push them,
    // some slowly, into an ordered queue of 2; the consumer must see all 400
    // in order, and the queue never holds more than the window allows.
    auto window = std::make_shared<SequenceWindow>(6);
    BatchQueue q(2, true, 4);
    q.set_window(window, 0);
    std::vector<std::thread> producers;
    for (int p = 0; p < 4; ++p)
        producers.emplace_back([&] {
            for (;;) {
                auto s = window->acquire();
                if (!s || *s >= 400) break;
                if (*s % 7 == 0) std::this_thread::sleep_for(100us);
                q.push(batch(*s));
            }
            q.producer_done();
        });
    for (uint64_t s = 0; s < 400; ++s) {
        auto b = q.pop();
        ASSERT_TRUE(b.has_value());
        ASSERT_EQ(b->seq, s);
    }
    window->abort(); // release producers waiting for a number past the end
    EXPECT_FALSE(q.pop().has_value());
    for (auto &t : producers) t.join();
    EXPECT_LE(q.peak(), 6u);
}

TEST(SequenceWindow, TheSlowestLaneHoldsTheWindow) {
    SequenceWindow w(1, 2);
    EXPECT_EQ(*w.acquire(), 0u);
    w.release_below(0, 1);
    std::atomic<bool> got{false};
    std::thread t([&] {
        w.acquire();
        got = true;
    });
    std::this_thread::sleep_for(30ms);
    EXPECT_FALSE(got) << "lane 1 has not released batch 0 yet";
    w.release_below(1, 1);
    t.join();
}

TEST(SequenceWindow, AcquireWaitsForRelease) {
    SequenceWindow w(2);
    EXPECT_EQ(*w.acquire(), 0u);
    EXPECT_EQ(*w.acquire(), 1u);
    std::atomic<bool> got{false};
    std::thread t([&] {
        EXPECT_EQ(*w.acquire(), 2u);
        got = true;
    });
    std::this_thread::sleep_for(30ms);
    EXPECT_FALSE(got);
    w.release_below(0, 1);
    t.join();
    EXPECT_TRUE(got);
}

TEST(BatchQueue, OrderedModeAdmitsOutOfOrderBatchesWhileTheNextIsMissing) {
    // The consumer waits for seq 0; seqs 1..5 must not block their producer
    // (seq 0 may be behind them), but once 0 is there a full queue blocks.
    BatchQueue q(2, true, 1);
    for (uint64_t s = 1; s <= 5; ++s) ASSERT_TRUE(q.push(batch(s)));
    q.push(batch(0));
    std::atomic<bool> pushed{false};
    std::thread producer([&] {
        q.push(batch(6));
        pushed = true;
    });
    std::this_thread::sleep_for(50ms);
    EXPECT_FALSE(pushed);
    for (uint64_t s = 0; s <= 4; ++s) EXPECT_EQ(q.pop()->seq, s);
    producer.join();
    EXPECT_TRUE(pushed);
}

TEST(BatchQueue, TailBatchesComeAfterSequencedOnes) {
    BatchQueue q(4, true, 1);
    q.push(batch(BatchQueue::kTailSeq));
    q.push(batch(1));
    q.push(batch(0));
    q.producer_done();
    EXPECT_EQ(q.pop()->seq, 0u);
    EXPECT_EQ(q.pop()->seq, 1u);
    EXPECT_EQ(q.pop()->seq, BatchQueue::kTailSeq);
    EXPECT_FALSE(q.pop().has_value());
}

TEST(BatchQueue, AbortWakesBlockedProducersAndConsumers) {
    BatchQueue q(1, false, 1);
    q.push(batch(0));
    std::thread producer([&] { EXPECT_FALSE(q.push(batch(1))); });
    BatchQueue empty(1, false, 1);
    std::thread consumer([&] { EXPECT_FALSE(empty.pop().has_value()); });
    std::this_thread::sleep_for(20ms);
    q.abort();
    empty.abort();
    producer.join();
    consumer.join();
}

// Live reload rewires a quiet pipeline with these.
TEST(BatchQueue, IdleOnlyWhenNothingIsQueuedOrInHand) {
    BatchQueue q(4, false, 1);
    EXPECT_TRUE(q.idle());
    ASSERT_TRUE(q.push(batch(1)));
    EXPECT_FALSE(q.idle()) << "queued";
    auto b = q.pop();
    EXPECT_FALSE(q.idle()) << "popped, not yet done";
    q.done();
    EXPECT_TRUE(q.idle());
    // A producer added keeps the queue open when an old one leaves.
    q.add_producer();
    q.producer_done();
    ASSERT_TRUE(q.push(batch(2)));
    EXPECT_EQ(q.pop()->seq, 2u);
    q.producer_done();
    EXPECT_FALSE(q.pop().has_value());
}

TEST(BatchQueue, AnOrderedQueueAddedMidStreamStartsWhereItsExtractorIs) {
    auto window = std::make_shared<SequenceWindow>(4, 1, 100);
    EXPECT_EQ(window->next(), 100u);
    EXPECT_EQ(*window->acquire(), 100u);
    BatchQueue q(4, true, 1);
    q.start_at(window->next());
    q.set_window(window, window->add_lane());
    ASSERT_TRUE(q.push(batch(102)));
    ASSERT_TRUE(q.push(batch(101)));
    EXPECT_EQ(q.pop()->seq, 101u);
    EXPECT_EQ(q.pop()->seq, 102u);
}

TEST(SequenceWindow, ARetiredLaneNoLongerHoldsTheWindow) {
    SequenceWindow w(2, 2);
    EXPECT_EQ(*w.acquire(), 0u);
    EXPECT_EQ(*w.acquire(), 1u);
    w.release_below(0, 2); // lane 1 never releases: its stage is being removed
    std::atomic<bool> got{false};
    std::thread t([&] {
        w.acquire();
        got = true;
    });
    std::this_thread::sleep_for(50ms);
    EXPECT_FALSE(got) << "held back by lane 1";
    w.retire(1);
    t.join();
    EXPECT_TRUE(got);
    w.retire(0); // every lane retired: nothing holds it back
    for (int i = 0; i < 10; ++i) EXPECT_TRUE(w.acquire().has_value());
}
