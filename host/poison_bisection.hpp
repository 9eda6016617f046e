// Finding the records that kill a worker. A slice of a batch that killed its
// worker twice is split in halves and each half is sent again, recursively:
// a half that goes through is done (its results kept), a half that kills
// the worker is split again, until single records are left. Those are the
// poison records. With one poison record in n, that is about 2*log2(n)
// calls, half of which kill a worker.
#pragma once

#include "stage_instance.hpp"

#include <cstdint>
#include <functional>
#include <optional>
#include <vector>

namespace sluice {

struct PoisonRecord {
    uint32_t index; // in the batch
    WorkerDeath death;
};

struct Bisection {
    std::vector<PoisonRecord> poison;
    // Ranges [first, first+count) never tried because the search had to
    // stop (no worker could be started): they take the error path.
    std::vector<std::pair<uint32_t, uint32_t>> untried;
    std::optional<WorkerDeath> stopped_by; // why it stopped early
    uint32_t calls = 0;
};

// What sending records [first, first+count) again did.
struct Attempt {
    enum class Outcome { done, died, cannot_continue };
    Outcome outcome = Outcome::done;
    WorkerDeath death{}; // when it died, or why it cannot go on
    // died, and no new worker may be started: the search ends here (a
    // single record is still a poison record). `stop_reason` says why.
    bool last = false;
    std::string stop_reason;
};

// `range` killed the worker (`death`, the last time). `attempt` sends a
// range again (and starts a new worker after a death).
Bisection find_poison(uint32_t first, uint32_t count, const WorkerDeath &death,
                      const std::function<Attempt(uint32_t first, uint32_t count)> &attempt);

} // namespace sluice
