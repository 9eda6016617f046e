// At-least-once delivery: acknowledgement tracking and the state file.
#include "acknowledgement.hpp"
#include "stage_harness.hpp"
#include "state_store.hpp"
#include "temp_dir.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <thread>

using namespace sluice;
using namespace sluice::test;

TEST(AckTracker, ThePositionMovesOnlyOverARunOfCompletedPulls) {
    PipelineControl control;
    auto tracker = std::make_shared<AckTracker>(control, std::optional<std::string>("p0"));
    AckRef a = tracker->issue("p1", 10), b = tracker->issue("p2", 5), c = tracker->issue("p3", 7);
    EXPECT_EQ(tracker->snapshot().position, "p0");
    EXPECT_EQ(tracker->snapshot().unacknowledged, 22u);
    b.reset(); // out of order: nothing moves yet
    EXPECT_EQ(tracker->snapshot().position, "p0");
    a.reset(); // a and b are done
    EXPECT_EQ(tracker->snapshot().position, "p2");
    EXPECT_EQ(tracker->snapshot().acknowledged, 15u);
    EXPECT_EQ(tracker->snapshot().unacknowledged, 7u);
    // A token shared by several batches completes with the last of them.
    AckRef c2 = c;
    c.reset();
    EXPECT_EQ(tracker->snapshot().position, "p2");
    c2.reset();
    EXPECT_EQ(tracker->snapshot().position, "p3");
    EXPECT_EQ(tracker->snapshot().unacknowledged, 0u);
    // An empty position ("cannot say") keeps the last one.
    tracker->issue("", 1).reset();
    EXPECT_EQ(tracker->snapshot().position, "p3");
}

TEST(AckTracker, APoisonedPullBlocksThePositionForGood) {
    PipelineControl control;
    auto tracker = std::make_shared<AckTracker>(control, std::nullopt);
    AckRef a = tracker->issue("p1", 1), b = tracker->issue("p2", 1), c = tracker->issue("p3", 1);
    a.reset();
    b->poison();
    b.reset();
    c.reset();
    EXPECT_EQ(tracker->snapshot().position, "p1");
    EXPECT_EQ(tracker->snapshot().unacknowledged, 2u);
}

TEST(AckTracker, NothingCountsOnceTheRunAborts) {
    PipelineControl control;
    auto tracker = std::make_shared<AckTracker>(control, std::nullopt);
    AckRef a = tracker->issue("p1", 1);
    control.abort("test");
    a.reset(); // dropped by the teardown, not delivered
    EXPECT_FALSE(tracker->snapshot().position.has_value());
}

TEST(StateStore, SavesAtomicallyAndReadsBack) {
    TempDir dir;
    PipelineControl control;
    auto w0 = std::make_shared<AckTracker>(control, std::nullopt);
    auto w1 = std::make_shared<AckTracker>(control, std::optional<std::string>("{\"next\":1}"));
    {
        StateStore store(dir / "state", "my pipeline/1");
        EXPECT_EQ(store.path(), dir / "state/my_pipeline_1.state.json");
        EXPECT_FALSE(store.saved("src"));
        store.track("src", "generate", 100, {w0, w1});
        store.start(std::chrono::milliseconds(10));
        AckRef t = w0->issue("{\"next\":4}", 2);
        AckRef u = w0->issue("{\"next\":8}", 2);
        t.reset();
        // The writer saves in the background.
        for (int i = 0; i < 200 && read_file(store.path()).find("{\\\"next\\\":4}") == std::string::npos; ++i)
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        EXPECT_NE(read_file(store.path()).find("{\\\"next\\\":4}"), std::string::npos) << read_file(store.path());
        EXPECT_EQ(store.finish(), "");
        EXPECT_EQ(store.unacknowledged(), 2u);
    }
    EXPECT_FALSE(std::filesystem::exists(dir / "state/my_pipeline_1.state.json.tmp"));
    StateStore again(dir / "state", "my pipeline/1");
    auto saved = again.saved("src");
    ASSERT_TRUE(saved);
    EXPECT_EQ(saved->plugin, "generate");
    EXPECT_EQ(saved->positions, (std::vector<std::string>{"{\"next\":4}", "{\"next\":1}"}));
    EXPECT_EQ(saved->unacknowledged, 2u);
}

TEST(StateStore, OneRunAtATimeAndBadFilesAreNamed) {
    TempDir dir;
    {
        StateStore first(dir.path(), "p");
        try {
            StateStore second(dir.path(), "p");
            FAIL() << "two runs shared a state file";
        } catch (const StateError &e) {
            EXPECT_EQ(std::string(e.what()), dir / "p.state.json" + ": in use by another sluice run (it holds " +
                                                 dir / "p.state.json.lock" + ")");
        }
    }
    dir.write("p.state.json", "{\"format\":\"sluice-state/1\",\"stages\":[]}");
    try {
        StateStore s(dir.path(), "p");
        FAIL();
    } catch (const StateError &e) {
        EXPECT_EQ(std::string(e.what()), dir / "p.state.json" + ": /stages: expected an object");
    }
    dir.write("p.state.json", "{\"stages\":");
    try {
        StateStore s(dir.path(), "p");
        FAIL();
    } catch (const StateError &e) {
        EXPECT_NE(std::string(e.what()).find("p.state.json: not a valid state file ("), std::string::npos) << e.what();
    }
}

TEST(StateStore, AnAbortedRunSavesWhatWasDeliveredBeforeTheAbort) {
    // Issue 9, R1/R5: a failing run used to save no state at all, so a rerun
    // read again everything the failed run had already delivered.
    TempDir dir;
    PipelineControl control;
    auto w = std::make_shared<AckTracker>(control, std::nullopt);
    {
        StateStore store(dir.path(), "p");
        store.track("src", "file", 100, {w});
        store.start(std::chrono::milliseconds(100000));
        AckRef delivered = w->issue("{\"line\":10}", 10);
        AckRef in_flight = w->issue("{\"line\":20}", 10);
        delivered.reset();
        control.abort("boom");
        in_flight.reset(); // dropped by the teardown, not delivered
        EXPECT_EQ(store.finish(), "");
        EXPECT_EQ(store.acknowledged(), 10u);
        EXPECT_EQ(store.unacknowledged(), 10u);
    }
    auto saved = StateStore(dir.path(), "p").saved("src");
    ASSERT_TRUE(saved);
    EXPECT_EQ(saved->positions, std::vector<std::string>{"{\"line\":10}"});
    EXPECT_EQ(saved->unacknowledged, 10u);
}

TEST(GenerateExtractor, ResumesAtTheSavedRecord) {
    std::vector<std::string> all = StageHarness(SLUICE_KIND_EXTRACTOR, "generate", R"({"count":10})").pull_all(3).out();
    std::string position;
    std::vector<std::string> got;
    {
        StageHarness g(SLUICE_KIND_EXTRACTOR, "generate", R"({"count":10})");
        g.start();
        got = g.pull(4).out();
        position = g.position().value();
    }
    EXPECT_EQ(position, "{\"next\":4}");
    StageHarness g(SLUICE_KIND_EXTRACTOR, "generate", R"({"count":10})");
    g.restore(position);
    g.start();
    Emitted rest = g.pull_all(3);
    for (auto &r : rest.out()) got.push_back(r);
    EXPECT_EQ(got, all);
    StageHarness bad(SLUICE_KIND_EXTRACTOR, "generate", R"({"count":10})");
    EXPECT_THROW(bad.restore("{\"next\":\"x\"}"), std::runtime_error);
}
