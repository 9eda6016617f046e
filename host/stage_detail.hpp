// What the files of the stage runtime share: timing, undoing what a failed
// call emitted, the statuses the ABI knows. Internal to host/stage*.cpp.
#pragma once

#include "batch.hpp"
#include "emitter.hpp"

#include <sluice/plugin.h>

#include <chrono>
#include <cstdint>
#include <vector>

namespace sluice::stage_detail {

using Clock = std::chrono::steady_clock;

inline uint64_t elapsed_ns(Clock::time_point since) {
    return uint64_t(std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - since).count());
}

// Output sizes before a call, to undo what a failed call emitted.
struct Mark {
    std::vector<size_t> outputs;
    size_t failures = 0;
};

inline Mark mark(const std::vector<Batch> &outputs, const FailureBatch &failures) {
    Mark m;
    for (const auto &b : outputs) m.outputs.push_back(b.records.size());
    m.failures = failures.items.size();
    return m;
}

inline void rollback(std::vector<Batch> &outputs, FailureBatch &failures, const Mark &m) {
    for (size_t i = 0; i < outputs.size(); ++i) outputs[i].records.resize(m.outputs[i]);
    failures.items.resize(m.failures);
}

inline bool known_status(sluice_status s) {
    return s == SLUICE_OK || s == SLUICE_ERROR || s == SLUICE_RETRY || s == SLUICE_FATAL;
}

} // namespace sluice::stage_detail
