// Plugin-declared metrics (sluice.metrics/1) as the host holds them: read
// from the extension, carried across the worker boundary, rendered into the
// report without knowing the plugin.
#include "metrics.hpp"
#include "metrics_declaration.hpp"

#include <gtest/gtest.h>

using namespace sluice;

namespace {

const sluice_metrics_ext *example() {
    static const sluice_metric metrics[] = {
        {"received", SLUICE_METRIC_COUNTER, 0, "records", "in"},
        {"kept", SLUICE_METRIC_COUNTER, 0, "records", "out"},
        {"misses", SLUICE_METRIC_COUNTER, 0, "", "cache misses"},
        {"p50_ms", SLUICE_METRIC_GAUGE, 0, "ms", "median"},
        {nullptr, SLUICE_METRIC_COUNTER, 0, nullptr, nullptr}, // skipped
    };
    static const sluice_metric_ratio ratios[] = {{"keep_rate", "kept", "received", "share kept"}};
    static const sluice_metrics_ext ext = {sizeof(sluice_metrics_ext), 5, metrics, 1, 0, ratios,
                                           "kept {keep_rate:.2f} ({kept} of {received})|, {misses} misses|, p50 {p50_ms} ms"};
    return &ext;
}

} // namespace

TEST(MetricsDeclaration, ComesFromTheExtensionAndCrossesTheBoundaryWhole) {
    MetricsDeclaration d = MetricsDeclaration::from(example());
    ASSERT_EQ(d.metrics.size(), 4u);
    EXPECT_TRUE(d.is_gauge("p50_ms"));
    EXPECT_FALSE(d.is_gauge("kept"));
    auto back = MetricsDeclaration::decode(d.encode());
    ASSERT_TRUE(back);
    EXPECT_EQ(back->encode(), d.encode());
    EXPECT_EQ(back->summary, d.summary);
    const std::string bytes = d.encode();
    for (size_t cut = 0; cut < bytes.size(); ++cut)
        EXPECT_FALSE(MetricsDeclaration::decode(std::string_view(bytes.data(), cut))) << cut;
    EXPECT_TRUE(MetricsDeclaration::from(nullptr).empty());
}

TEST(MetricsDeclaration, TheSummaryLeavesOutWhatTheRunDidNotReport) {
    MetricsDeclaration d = MetricsDeclaration::from(example());
    EXPECT_EQ(d.render_summary({{"received", 4}, {"kept", 3}, {"p50_ms", 12}}), "kept 0.75 (3 of 4), 0 misses, p50 12 ms")
        << "a counter never added to is 0";
    EXPECT_EQ(d.render_summary({{"received", 4}, {"kept", 3}}), "kept 0.75 (3 of 4), 0 misses")
        << "a gauge never reported drops its part";
    EXPECT_EQ(d.render_summary({{"kept", 3}}), "") << "no ratio, no first part, no line";
    EXPECT_EQ(d.ratio_values({{"received", 0}, {"kept", 0}}).size(), 0u);
}

TEST(StageMetrics, AGaugeKeepsTheLargestValueReportedACounterTheSum) {
    StageMetrics m(2);
    m.declare_gauge("p50_ms");
    m.counter_add("p50_ms", 40);
    m.counter_add("p50_ms", 55);
    m.counter_add("p50_ms", 50);
    m.counter_add("requests", 3);
    m.counter_add("requests", 4);
    EXPECT_EQ(m.counters()["p50_ms"], 55);
    EXPECT_EQ(m.counters()["requests"], 7);
}
