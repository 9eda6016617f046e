#include "metrics.hpp"

#include <algorithm>

namespace sluice {

StageMetrics::StageMetrics(size_t workers) : workers_(workers ? workers : 1) {}

StageTotals StageMetrics::totals() const {
    StageTotals t;
    for (const auto &w : workers_) {
        t.in += w.in.load(std::memory_order_relaxed);
        t.out += w.out.load(std::memory_order_relaxed);
        t.rejected += w.rejected.load(std::memory_order_relaxed);
        t.errors += w.errors.load(std::memory_order_relaxed);
        t.dropped += w.dropped.load(std::memory_order_relaxed);
        t.filtered += w.filtered.load(std::memory_order_relaxed);
        t.unaccounted += w.unaccounted.load(std::memory_order_relaxed);
        t.dead_lettered += w.dead_lettered.load(std::memory_order_relaxed);
        t.retries += w.retries.load(std::memory_order_relaxed);
        t.batches += w.batches.load(std::memory_order_relaxed);
        t.busy_seconds += double(w.busy_ns.load(std::memory_order_relaxed)) / 1e9;
        t.cpu_seconds += double(w.cpu_ns.load(std::memory_order_relaxed)) / 1e9;
    }
    return t;
}

void StageMetrics::counter_add(const std::string &name, int64_t delta) {
    std::lock_guard lock(mutex_);
    if (!gauges_.count(name)) {
        counters_[name] += delta;
        return;
    }
    auto [it, fresh] = counters_.emplace(name, delta);
    if (!fresh) it->second = std::max(it->second, delta);
}

void StageMetrics::declare_gauge(const std::string &name) {
    std::lock_guard lock(mutex_);
    gauges_.insert(name);
}

std::map<std::string, int64_t> StageMetrics::counters() const {
    std::lock_guard lock(mutex_);
    return counters_;
}

void StageMetrics::reason(bool rejected, const std::string &reason, uint64_t n) {
    std::lock_guard lock(mutex_);
    auto &m = rejected ? reject_reasons_ : error_reasons_;
    auto it = m.find(reason);
    if (it != m.end()) it->second += n;
    else if (m.size() < kMaxReasons) m.emplace(reason, n);
    else m["(other reasons)"] += n;
}

std::vector<std::pair<std::string, uint64_t>> StageMetrics::top_reasons(bool rejected, size_t limit) const {
    std::lock_guard lock(mutex_);
    const auto &m = rejected ? reject_reasons_ : error_reasons_;
    std::vector<std::pair<std::string, uint64_t>> v(m.begin(), m.end());
    std::stable_sort(v.begin(), v.end(), [](const auto &a, const auto &b) { return a.second > b.second; });
    if (v.size() > limit) v.resize(limit);
    return v;
}

void StageMetrics::worker_crashed(const std::string &cause) {
    std::lock_guard lock(mutex_);
    ++isolation_.crashes[cause];
}

void StageMetrics::worker_restarted() {
    std::lock_guard lock(mutex_);
    ++isolation_.restarts;
}

void StageMetrics::poison_record(uint64_t id) {
    std::lock_guard lock(mutex_);
    ++isolation_.poison_count;
    if (isolation_.poison_records.size() < kMaxPoisonListed) isolation_.poison_records.push_back(id);
}

void StageMetrics::worker_peak_rss(uint64_t mb) {
    std::lock_guard lock(mutex_);
    isolation_.peak_rss_mb = std::max(isolation_.peak_rss_mb, mb);
}

IsolationTotals StageMetrics::isolation() const {
    std::lock_guard lock(mutex_);
    return isolation_;
}

void StageMetrics::mark_started() {
    std::lock_guard lock(mutex_);
    if (!has_started_) {
        started_ = std::chrono::steady_clock::now();
        has_started_ = true;
    }
}

void StageMetrics::mark_finished() {
    std::lock_guard lock(mutex_);
    finished_ = std::chrono::steady_clock::now();
    has_finished_ = true;
}

double StageMetrics::seconds() const {
    std::lock_guard lock(mutex_);
    if (!has_started_) return 0;
    auto end = has_finished_ ? finished_ : std::chrono::steady_clock::now();
    return std::chrono::duration<double>(end - started_).count();
}

void StageMetrics::set_output_count(size_t n) {
    outputs_ = std::make_unique<std::atomic<uint64_t>[]>(n);
    output_count_ = n;
}

std::vector<uint64_t> StageMetrics::output_counts() const {
    std::vector<uint64_t> v;
    for (size_t i = 0; i < output_count_; ++i) v.push_back(outputs_[i].load(std::memory_order_relaxed));
    return v;
}

} // namespace sluice
