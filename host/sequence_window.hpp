// Bounds how far extraction may run ahead of the slowest ordered stage.
// An ordered stage releases batches strictly in sequence; if one batch is
// slow, the ones after it wait in its reorder buffer. The window stops the
// extractor from numbering (and so producing) a batch more than `size`
// sequence numbers ahead of the oldest batch not yet released, which bounds
// that buffer without ever blocking the producer of the missing batch.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <optional>
#include <vector>

namespace sluice {

class SequenceWindow {
public:
    // `lanes`: how many ordered stages release batches into this window;
    // the oldest unreleased batch is the oldest any of them still waits for.
    // `first`: the first number to hand out (a window made for a running
    // extractor goes on from where it is).
    explicit SequenceWindow(uint64_t size, size_t lanes = 1, uint64_t first = 0)
        : size_(size ? size : 1), next_(first), released_(lanes ? lanes : 1, first), oldest_(first) {}

    // The next sequence number; waits while it would be `size` or more ahead
    // of the oldest unreleased one. Nothing once aborted.
    std::optional<uint64_t> acquire();
    // Every batch below `seq` has been released by ordered stage `lane`.
    void release_below(size_t lane, uint64_t seq);
    void abort();
    uint64_t size() const { return size_; }
    // Live reload, while nothing flows: the next number to hand out, a new
    // lane (an ordered stage added) and a lane that no longer holds the
    // window back (its stage removed).
    uint64_t next();
    size_t add_lane();
    void retire(size_t lane);

private:
    const uint64_t size_;
    std::mutex mutex_;
    std::condition_variable cv_;
    uint64_t next_;
    std::vector<uint64_t> released_; // per lane
    uint64_t oldest_;                // min of released_
    bool aborted_ = false;
};

} // namespace sluice
