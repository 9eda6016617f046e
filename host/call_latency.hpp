// How long a stage's plugin calls take (a call handles one batch), as a
// histogram with fixed buckets for the metrics endpoint. One relaxed atomic
// add per call, no lock: cheap enough for every batch.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <vector>

namespace sluice {

class CallLatency {
public:
    // Upper bounds in seconds; the last bucket (+Inf) is implicit.
    static constexpr std::array<double, 14> kBounds = {0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                                       0.05,   0.1,    0.25,  0.5,    1,     2.5,   10};

    void observe(uint64_t ns) {
        const double s = double(ns) / 1e9;
        size_t i = 0;
        while (i < kBounds.size() && s > kBounds[i]) ++i;
        buckets_[i].fetch_add(1, std::memory_order_relaxed);
        sum_ns_.fetch_add(ns, std::memory_order_relaxed);
    }

    struct Snapshot {
        std::vector<uint64_t> counts; // per bucket, not cumulative; last: above every bound
        double sum_seconds = 0;
    };
    Snapshot snapshot() const {
        Snapshot s;
        for (const auto &b : buckets_) s.counts.push_back(b.load(std::memory_order_relaxed));
        s.sum_seconds = double(sum_ns_.load(std::memory_order_relaxed)) / 1e9;
        return s;
    }

private:
    std::array<std::atomic<uint64_t>, kBounds.size() + 1> buckets_{};
    std::atomic<uint64_t> sum_ns_{0};
};

} // namespace sluice
