// The metrics of the llm stages (sluice.metrics/1): what the host shows in
// the report and the run summary, without knowing the plugin.
#pragma once

#include <sluice/plugin.h>

#include <cstring>

namespace sluice::plugins {

inline const sluice_metrics_ext *llm_metrics() {
    static const sluice_metric metrics[] = {
        {"received", SLUICE_METRIC_COUNTER, 0, "records", "records the stage was given"},
        {"enriched", SLUICE_METRIC_COUNTER, 0, "records", "records it passed on with the model's answer"},
        {"requests", SLUICE_METRIC_COUNTER, 0, "requests", "requests sent to the endpoint"},
        {"retries", SLUICE_METRIC_COUNTER, 0, "requests", "requests sent again (timeouts, 429, 5xx)"},
        {"repairs", SLUICE_METRIC_COUNTER, 0, "requests", "answers sent back to the model to be fixed"},
        {"cache_hits", SLUICE_METRIC_COUNTER, 0, "requests", "answers taken from the cache"},
        {"deduplicated", SLUICE_METRIC_COUNTER, 0, "requests", "identical requests in flight answered once"},
        {"prompt_tokens", SLUICE_METRIC_COUNTER, 0, "tokens", "tokens sent, as the endpoint counts them"},
        {"completion_tokens", SLUICE_METRIC_COUNTER, 0, "tokens", "tokens received"},
        {"budget_refusals", SLUICE_METRIC_COUNTER, 0, "requests", "requests refused by the token budget"},
        {"budget_exhausted", SLUICE_METRIC_COUNTER, 0, "records", "records not enriched: the budget was spent"},
        {"failed_requests", SLUICE_METRIC_COUNTER, 0, "requests", "requests that failed for good"},
        {"batch_fallbacks", SLUICE_METRIC_COUNTER, 0, "batches", "batched requests answered record by record"},
        {"latency_p50_ms", SLUICE_METRIC_GAUGE, 0, "ms", "median request latency"},
        {"latency_p90_ms", SLUICE_METRIC_GAUGE, 0, "ms", "90th percentile request latency"},
        {"latency_p99_ms", SLUICE_METRIC_GAUGE, 0, "ms", "99th percentile request latency"},
    };
    static const sluice_metric_ratio ratios[] = {
        {"enrichment_rate", "enriched", "received", "the share of records enriched"},
    };
    static const sluice_metrics_ext ext = {
        sizeof(sluice_metrics_ext),
        uint32_t(sizeof metrics / sizeof metrics[0]),
        metrics,
        uint32_t(sizeof ratios / sizeof ratios[0]),
        0,
        ratios,
        "enrichment rate {enrichment_rate:.3f} ({enriched} of {received})"
        "|; {requests} requests, {retries} retries, {cache_hits} cache hits, {prompt_tokens} prompt + "
        "{completion_tokens} completion tokens"
        "|; latency p50 {latency_p50_ms} ms, p90 {latency_p90_ms} ms, p99 {latency_p99_ms} ms",
    };
    return &ext;
}

// For a stage's extension(id).
inline const void *llm_extension(const char *id) {
    return id && std::strcmp(id, SLUICE_EXT_METRICS) == 0 ? llm_metrics() : nullptr;
}

} // namespace sluice::plugins
