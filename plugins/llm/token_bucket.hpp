// A token bucket that hands out reservations: take(cost) deducts at once and
// says how long to wait before going ahead, so waiting callers are served in
// order and the long-run rate never exceeds `rate`. Not thread-safe: used
// from the engine's single I/O thread.
#pragma once

#include <algorithm>
#include <chrono>

namespace sluice::plugins::llm {

class TokenBucket {
public:
    using Clock = std::chrono::steady_clock;

    // `per_second` tokens a second, up to `capacity` saved up. 0: unlimited.
    TokenBucket(double per_second, double capacity)
        : rate_(per_second / 1000.0), capacity_(capacity), tokens_(capacity), last_(Clock::now()) {}

    bool unlimited() const { return rate_ <= 0; }

    std::chrono::milliseconds take(double cost) {
        if (unlimited()) return std::chrono::milliseconds(0);
        refill();
        tokens_ -= cost; // may go below zero: the wait covers it, and the next caller waits after
        if (tokens_ >= 0) return std::chrono::milliseconds(0);
        return std::chrono::milliseconds(int64_t(-tokens_ / rate_) + 1);
    }
    // Gives back (or charges more of) an estimate once the real cost is known.
    void adjust(double delta) {
        if (unlimited()) return;
        refill();
        tokens_ = std::min(capacity_, tokens_ + delta);
    }

private:
    void refill() {
        auto now = Clock::now();
        double ms = std::chrono::duration<double, std::milli>(now - last_).count();
        last_ = now;
        tokens_ = std::min(capacity_, tokens_ + ms * rate_);
    }

    double rate_, capacity_, tokens_;
    Clock::time_point last_;
};

} // namespace sluice::plugins::llm
