// The parts that make Sluice operable as a service, in process: taps,
// JSON log lines, the progress line, run thresholds, readiness.
#include "logging.hpp"
#include "manifest.hpp"
#include "pipeline.hpp"
#include "progress_line.hpp"
#include "prometheus_metrics.hpp"
#include "record_tap.hpp"
#include "run_thresholds.hpp"
#include "secret_redactor.hpp"

#include <boost/json.hpp>
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

using namespace sluice;
namespace bj = boost::json;

namespace {
sluice_record json_record(const std::string &payload, uint64_t id) {
    sluice_record r{};
    r.payload = payload.data();
    r.payload_len = payload.size();
    r.id = id;
    return r;
}
} // namespace

TEST(RecordTap, AReaderGetsWhatItHasRoomForAndTheRestIsDroppedNotWaitedFor) {
    RecordTap tap;
    EXPECT_FALSE(tap.active()) << "no reader: the stage pays one load";
    auto reader = tap.subscribe(1, 3);
    EXPECT_TRUE(tap.active());
    const std::string a = R"({"a":1})", b = R"({"b":2})", text = "line one\nline two";
    std::vector<sluice_record> batch{json_record(a, 1), json_record(b, 2), json_record(a, 3), json_record(b, 4)};
    tap.offer(0, batch.data(), batch.size()); // another output: not this reader's
    EXPECT_TRUE(reader->take(10).empty());
    tap.offer(1, batch.data(), batch.size());
    EXPECT_EQ(reader->take(10), (std::vector<std::string>{a, b, a}));
    EXPECT_EQ(reader->dropped(), 1u) << "the fourth had no room";
    sluice_record t = json_record(text, 9);
    t.content_type = SLUICE_CONTENT_TEXT;
    tap.offer(1, &t, 1);
    EXPECT_EQ(reader->take(1), std::vector<std::string>{R"({"id":9,"content_type":"text/plain","text":"line one\nline two"})"});
    reader.reset();
    tap.offer(1, batch.data(), 1);
    EXPECT_FALSE(tap.active()) << "a reader that left is forgotten";
}

TEST(JsonLogs, ALineNamesItsStagePluginAndRecord) {
    set_log_stage_plugins({{"gate", "rules"}});
    bj::value v = bj::parse(json_log_line("2026-12-07T10:00:00.123Z", "warning",
                                          "[gate] rejected record 42 (in.csv:7): \"amount\" below 0"));
    EXPECT_EQ(v, bj::parse(R"({"time":"2026-12-07T10:00:00.123Z","level":"warning","stage":"gate","plugin":"rules",
                               "record":42,"message":"rejected record 42 (in.csv:7): \"amount\" below 0"})"));
    bj::value plain = bj::parse(json_log_line("t", "info", "pipeline 'p': running 3 stages"));
    EXPECT_FALSE(plain.as_object().contains("stage"));
    EXPECT_FALSE(plain.as_object().contains("record"));
    bj::value word = bj::parse(json_log_line("t", "info", "[x] rerecord 5 is not a record number"));
    EXPECT_FALSE(word.as_object().contains("record")) << "'record' must start a word";
    EXPECT_FALSE(word.as_object().contains("plugin")) << "an unknown stage has no plugin";
}

TEST(ProgressLine, SaysWhereTheRunIsAndWhichStageIsBusiest) {
    ProgressLine::Reading before{10.0, 1000, 900, 50, 5, {{"in", 1.0}, {"map", 2.0}, {"out", 1.0}}};
    ProgressLine::Reading now{12.0, 5000, 4600, 60, 7, {{"in", 1.5}, {"map", 3.9}, {"out", 1.2}}};
    EXPECT_EQ(ProgressLine::render(now, before),
              "0:12 elapsed, 5000 extracted, 4600 loaded, 60 rejected, 7 failed, 2000 records/s, busiest: map");
    now.seconds = 3725;
    EXPECT_EQ(ProgressLine::render(now, now).substr(0, 16), "1:02:05 elapsed,");
}

TEST(RunThresholds, ConditionsAndWhatTheyMakeOfAReport) {
    RunThresholds t;
    EXPECT_EQ(t.add_condition("error_rate>0.1"), "");
    EXPECT_EQ(t.add_condition("quality<0.9"), "");
    EXPECT_EQ(t.add_condition("rejects"), "");
    EXPECT_NE(t.add_condition("error_rate>x").find("expected a rate from 0 to 1"), std::string::npos);
    EXPECT_NE(t.add_condition("quality<1.5").find("expected a score from 0 to 1"), std::string::npos);
    EXPECT_NE(t.add_condition("latency").find("unknown condition 'latency'"), std::string::npos);
    auto report = [](uint64_t extracted, uint64_t errors, uint64_t rejected, uint64_t delivered, double quality) {
        const double rate = extracted ? double(errors) / double(extracted) : 0;
        return bj::object{{"records", bj::object{{"extracted", extracted}, {"unreadable", 0}, {"errors", errors},
                                                 {"rejected", rejected}, {"delivered", delivered}}},
                          {"quality", bj::object{{"quality_score", quality}, {"error_rate", rate}}}};
    };
    EXPECT_TRUE(t.crossed(report(100, 10, 0, 90, 0.9)).empty()) << "at the thresholds, not past them";
    EXPECT_EQ(t.crossed(report(100, 11, 1, 88, 0.88)).size(), 3u);
    RunThresholds defaults;
    EXPECT_TRUE(defaults.crossed(report(0, 0, 0, 0, 1)).empty()) << "an empty source is not a failure";
    EXPECT_EQ(defaults.crossed(report(5, 5, 0, 0, 0)).size(), 1u);
    defaults.fail_if_nothing_loaded = false;
    EXPECT_TRUE(defaults.crossed(report(5, 5, 0, 0, 0)).empty());
}

TEST(Pipeline, IsNotReadyBeforeItRunsAndSaysSo) {
    Pipeline p(parse_manifest(R"({"name":"r","stages":[
      {"id":"in","kind":"extractor","plugin":"generate","config":{"count":1}},
      {"id":"out","kind":"loader","plugin":"null"}]})",
                              "/tmp/r.json"));
    EXPECT_EQ(p.not_ready(), std::vector<std::string>{"the pipeline is created"});
    EXPECT_EQ(p.live_report().at("status"), "created");
    EXPECT_TRUE(p.preflight().empty());
}

TEST(PrometheusMetrics, NamesAreWhatPrometheusAllows) {
    EXPECT_EQ(prometheus_name("latency_p50_ms"), "latency_p50_ms");
    EXPECT_EQ(prometheus_name("cache-hits.total"), "cache_hits_total");
    EXPECT_EQ(prometheus_name("9lives"), "_9lives");
}

// Under ThreadSanitizer too: a stage offering batches while readers come,
// read and go.
TEST(RecordTap, ReadersComingAndGoingWhileAStageOffers) {
    RecordTap tap;
    const std::string payload = R"({"x":1})";
    std::vector<sluice_record> batch(64, json_record(payload, 1));
    std::atomic<bool> done{false};
    std::thread stage([&] {
        while (!done)
            if (tap.active()) tap.offer(0, batch.data(), batch.size());
    });
    uint64_t seen = 0;
    for (int i = 0; i < 200; ++i) {
        auto reader = tap.subscribe(0, 100);
        for (int j = 0; j < 5; ++j) seen += reader->take(50).size();
    }
    done = true;
    stage.join();
    tap.offer(0, batch.data(), 1); // the next batch finds every reader gone
    EXPECT_FALSE(tap.active());
    SUCCEED() << seen << " lines read";
}

TEST(SecretRedactor, ReplacesEverySecretLongestFirstAndIgnoresTinyOnes) {
    SecretRedactor r;
    r.add("ab");          // too short to mean anything
    r.add("hunter2");
    r.add("hunter2-extra");
    EXPECT_EQ(r.redact("ab hunter2 hunter2-extra hunter2"), "ab *** *** ***");
    SecretRedactor none;
    EXPECT_TRUE(none.empty());
    EXPECT_EQ(none.redact("hunter2"), "hunter2");
}
