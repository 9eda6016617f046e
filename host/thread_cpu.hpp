// CPU time of the calling thread, for the CPU each stage costs (report,
// /metrics): a stage's worker charges what its thread used between two
// points, so time spent blocked on a queue or sleeping is not counted.
#pragma once

#include <cstdint>
#include <ctime>

namespace sluice {

inline uint64_t thread_cpu_ns() {
    timespec ts{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return uint64_t(ts.tv_sec) * 1000000000u + uint64_t(ts.tv_nsec);
}

// Adds the thread's CPU since the last charge to a counter.
class CpuMeter {
public:
    CpuMeter() : mark_(thread_cpu_ns()) {}
    template <class Add> void charge(Add &&add) {
        const uint64_t now = thread_cpu_ns();
        add(now - mark_);
        mark_ = now;
    }

private:
    uint64_t mark_;
};

} // namespace sluice
