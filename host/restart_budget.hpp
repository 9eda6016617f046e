// How many times a stage's workers may die per minute before the stage
// stops restarting them (max_restarts). A sliding window: the restarts of
// the last sixty seconds count.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <mutex>

namespace sluice {

class RestartBudget {
public:
    using Clock = std::chrono::steady_clock;
    explicit RestartBudget(uint32_t per_minute) : per_minute_(per_minute) {}

    // [any] Takes one restart at `now`; false when the last minute already
    // had max_restarts of them (nothing is taken then).
    bool take(Clock::time_point now = Clock::now()) {
        std::lock_guard lock(mutex_);
        while (!taken_.empty() && now - taken_.front() >= std::chrono::minutes(1)) taken_.pop_front();
        if (taken_.size() >= per_minute_) return false;
        taken_.push_back(now);
        return true;
    }
    uint32_t per_minute() const { return per_minute_; }
    // [any] Whether the last minute used every restart: a stage restarting
    // in a loop (not ready).
    bool spent(Clock::time_point now = Clock::now()) {
        std::lock_guard lock(mutex_);
        while (!taken_.empty() && now - taken_.front() >= std::chrono::minutes(1)) taken_.pop_front();
        return taken_.size() >= per_minute_;
    }

private:
    const uint32_t per_minute_;
    std::mutex mutex_;
    std::deque<Clock::time_point> taken_;
};

} // namespace sluice
