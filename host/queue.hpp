// A bounded queue of batches between two stages. A full queue blocks its
// producers (backpressure), so memory stays bounded by capacity x batch size
// whatever the input size. In ordered mode batches come out in extraction
// order (by Batch::seq): a producer may run ahead of the oldest missing batch
// by at most `capacity` batches, which bounds memory the same way and cannot
// deadlock, because the producer holding the oldest batch is never blocked.
#pragma once

#include "batch.hpp"

#include <condition_variable>
#include <deque>
#include <limits>
#include <map>
#include <mutex>
#include <optional>

namespace sluice {

class BatchQueue {
public:
    // Batches emitted at flush time come after every extracted batch.
    static constexpr uint64_t kTailSeq = std::numeric_limits<uint64_t>::max();

    BatchQueue(size_t capacity, bool ordered, size_t producers);

    // Blocks while full. Returns false (dropping the batch) once aborted.
    bool push(Batch &&batch);
    // Blocks while empty. Returns nothing once every producer is done and
    // the queue is drained, or once aborted.
    std::optional<Batch> pop();
    // Called once by each producer when it will push no more.
    void producer_done();
    // Wakes everyone; pushes and pops fail from now on.
    void abort();

    size_t capacity() const { return capacity_; }
    size_t peak() const;   // most batches ever held at once
    size_t size() const;

private:
    bool can_pop_locked() const;

    const size_t capacity_;
    const bool ordered_;
    size_t producers_;
    bool aborted_ = false;
    size_t peak_ = 0;
    mutable std::mutex mutex_;
    std::condition_variable not_full_, not_empty_;
    std::deque<Batch> fifo_;             // unordered mode, and tail batches
    std::map<uint64_t, Batch> pending_;  // ordered mode: by seq
    uint64_t next_seq_ = 0;
};

} // namespace sluice
