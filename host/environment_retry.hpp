// An environment failure is a call answering SLUICE_RETRY: the destination or
// source cannot take anything right now (disk full, I/O error, connection
// lost, permission denied). It is never the record's fault, so it is never
// skipped or dead-lettered: the call is tried again with backoff for the
// stage's retry_environment_ms, and after that the stage fails the run.
#pragma once

#include "error_policy.hpp"
#include "pipeline_control.hpp"

#include <algorithm>
#include <chrono>
#include <cstdint>

namespace sluice {

class EnvironmentRetry {
public:
    using Clock = std::chrono::steady_clock;

    explicit EnvironmentRetry(uint32_t budget_ms) : deadline_(Clock::now() + std::chrono::milliseconds(budget_ms)) {}

    // After a SLUICE_RETRY: waits before the next try (100 ms doubling up
    // to 5 s, with jitter, never past the budget). False when the budget is
    // spent or the run is ending, i.e. when the stage should give up.
    bool wait(PipelineControl &control, bool wake_on_stop) {
        ++attempts_;
        if (control.aborted() || control.failed()) return false;
        auto now = Clock::now();
        if (now >= deadline_) return false;
        static const ErrorPolicy kBackoff = [] {
            ErrorPolicy p;
            p.backoff = std::chrono::milliseconds(100);
            p.max_backoff = std::chrono::milliseconds(5000);
            return p;
        }();
        auto d = std::min(retry_delay(kBackoff, uint32_t(attempts_)),
                          std::chrono::duration_cast<std::chrono::milliseconds>(deadline_ - now));
        return control.sleep_for(d, wake_on_stop) && !control.failed();
    }
    // Tries made so far (the first included) once wait() said no.
    int attempts() const { return attempts_; }

private:
    Clock::time_point deadline_;
    int attempts_ = 0;
};

} // namespace sluice
