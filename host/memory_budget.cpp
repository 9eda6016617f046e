#include "memory_budget.hpp"

#include <algorithm>
#include <chrono>

namespace sluice {

MemoryBudget &MemoryBudget::global() {
    static MemoryBudget budget;
    return budget;
}

bool MemoryBudget::wait_for_room(const PipelineControl &control) {
    while (used() >= limit()) {
        if (control.stop_requested() || control.aborted()) return false;
        std::unique_lock lock(mutex_);
        // Bounded: a stop does not notify this condition.
        room_.wait_for(lock, std::chrono::milliseconds(10), [&] { return used() < limit(); });
    }
    return true;
}

uint64_t MemoryBudget::batch_bytes() const {
    const uint64_t l = limit();
    if (l == UINT64_MAX) return UINT64_MAX;
    return std::max<uint64_t>(l / 16, 64 * 1024);
}

} // namespace sluice
