// Per-stage counters. Each worker thread owns one WorkerCounters (its own
// cache line, relaxed atomics: no contention in the hot path); totals are
// summed when read. Plugin counters and failure reasons are rarer and sit
// behind a mutex.
#pragma once

#include "call_latency.hpp"

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

namespace sluice {

struct alignas(64) WorkerCounters {
    std::atomic<uint64_t> in{0};        // records received (extractors: produced)
    std::atomic<uint64_t> out{0};       // records sent on to a connected output
    std::atomic<uint64_t> rejected{0};  // records that failed a rule
    std::atomic<uint64_t> errors{0};    // records that failed processing or reading
    std::atomic<uint64_t> dropped{0};   // records emitted on an output nothing reads
    std::atomic<uint64_t> filtered{0};  // inputs the plugin dropped on purpose (sluice.drop/1)
    std::atomic<uint64_t> unaccounted{0}; // inputs the plugin said nothing about (also errors)
    std::atomic<uint64_t> dead_lettered{0}; // errors sent to the dead-letter stage
    std::atomic<uint64_t> retries{0};   // records or batches tried again
    std::atomic<uint64_t> batches{0};
    std::atomic<uint64_t> busy_ns{0};   // time spent inside plugin calls
    std::atomic<uint64_t> cpu_ns{0};    // CPU the stage's threads used (plugin and host work)

    void add(std::atomic<uint64_t> &c, uint64_t n) { c.fetch_add(n, std::memory_order_relaxed); }
};

struct StageTotals {
    uint64_t in = 0, out = 0, rejected = 0, errors = 0, dropped = 0, filtered = 0, unaccounted = 0, dead_lettered = 0,
             retries = 0, batches = 0;
    double busy_seconds = 0;
    double cpu_seconds = 0;
};

// What the workers of an isolated stage went through (process isolation).
struct IsolationTotals {
    uint64_t restarts = 0;
    std::map<std::string, uint64_t> crashes; // by cause: SIGSEGV, exit, memory_limit, timeout ...
    std::vector<uint64_t> poison_records;    // ids (the first kMaxPoisonListed)
    uint64_t poison_count = 0;
    uint64_t peak_rss_mb = 0;
};

class StageMetrics {
public:
    explicit StageMetrics(size_t workers);

    WorkerCounters &worker(size_t i) { return workers_[i]; }
    StageTotals totals() const;

    // Plugin counters; a name declared a gauge keeps the largest value
    // reported instead of the sum.
    void counter_add(const std::string &name, int64_t delta);
    void declare_gauge(const std::string &name);
    std::map<std::string, int64_t> counters() const;

    // Counts a failure reason (capped in distinct reasons to bound memory).
    void reason(bool rejected, const std::string &reason, uint64_t n = 1);
    std::vector<std::pair<std::string, uint64_t>> top_reasons(bool rejected, size_t limit) const;

    // Records emitted on each output (a validator's "fail": rejected records
    // sent on to a reader). set_output_count before any output_add.
    void set_output_count(size_t n);
    void output_add(size_t output, uint64_t n) { outputs_[output].fetch_add(n, std::memory_order_relaxed); }
    std::vector<uint64_t> output_counts() const;

    // Isolation: a worker died of `cause`; a worker was started anew; a
    // record was found to kill the worker; a worker's peak memory.
    void worker_crashed(const std::string &cause);
    void worker_restarted();
    void poison_record(uint64_t id);
    void worker_peak_rss(uint64_t mb);
    IsolationTotals isolation() const;

    // Plugin call durations (a call per batch).
    CallLatency &latency() { return latency_; }
    const CallLatency &latency() const { return latency_; }

    void mark_started();
    void mark_finished();
    double seconds() const; // first start to finish (or to now)

    // Distinct reasons kept per kind; more count as "(other reasons)".
    static constexpr size_t kMaxReasons = 256;

private:
    static constexpr size_t kMaxPoisonListed = 100;
    IsolationTotals isolation_;
    CallLatency latency_;
    std::vector<WorkerCounters> workers_;
    std::unique_ptr<std::atomic<uint64_t>[]> outputs_;
    size_t output_count_ = 0;
    mutable std::mutex mutex_;
    std::map<std::string, int64_t> counters_;
    std::set<std::string> gauges_;
    std::map<std::string, uint64_t> reject_reasons_, error_reasons_;
    std::chrono::steady_clock::time_point started_{}, finished_{};
    bool has_started_ = false, has_finished_ = false;
};

} // namespace sluice
