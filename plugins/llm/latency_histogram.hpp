// Request latencies in fixed log-scale buckets (about 4% wide, 1 ms to 20
// minutes): percentiles in bounded memory however many requests a run makes.
#pragma once

#include <array>
#include <cmath>
#include <cstdint>
#include <mutex>

namespace sluice::plugins::llm {

class LatencyHistogram {
public:
    void record(double ms) {
        std::lock_guard lock(mutex_);
        ++buckets_[bucket(ms)];
        ++count_;
    }
    // The latency below which `p` (0..1) of the requests fell; 0 when none.
    double percentile(double p) const {
        std::lock_guard lock(mutex_);
        if (count_ == 0) return 0;
        uint64_t rank = uint64_t(std::ceil(p * double(count_))), seen = 0;
        for (size_t i = 0; i < buckets_.size(); ++i) {
            seen += buckets_[i];
            if (seen >= rank && buckets_[i]) return upper(i);
        }
        return upper(buckets_.size() - 1);
    }
    uint64_t count() const {
        std::lock_guard lock(mutex_);
        return count_;
    }

private:
    static constexpr double kGrowth = 1.04;
    static constexpr size_t kBuckets = 360; // 1.04^360 ms is about 20 minutes

    static size_t bucket(double ms) {
        if (ms <= 1) return 0;
        return std::min(kBuckets - 1, size_t(std::log(ms) / std::log(kGrowth)) + 1);
    }
    static double upper(size_t i) { return std::pow(kGrowth, double(i)); }

    mutable std::mutex mutex_;
    std::array<uint64_t, kBuckets> buckets_{};
    uint64_t count_ = 0;
};

} // namespace sluice::plugins::llm
