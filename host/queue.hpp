// A bounded queue of batches between two stages. A full queue blocks its
// producers (backpressure), so memory stays bounded by capacity x batch size
// whatever the input size. In ordered mode batches come out in extraction
// order (by Batch::seq). A producer then blocks only while the queue is full
// *and* its consumer can make progress (the next batch in sequence is
// there); while that batch is missing, others are admitted, because the
// missing one may be stuck behind them upstream. That cannot deadlock; what
// it admits is bounded by the SequenceWindow the extractor numbers batches
// from, which this queue advances as it releases them.
#pragma once

#include "batch.hpp"
#include "sequence_window.hpp"

#include <chrono>
#include <condition_variable>
#include <deque>
#include <limits>
#include <map>
#include <memory>
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
    // As pop, but waits no later than `deadline` (nothing then: none came;
    // a deadline already past takes only what is ready now).
    std::optional<Batch> pop_until(std::chrono::steady_clock::time_point deadline);
    // Called once by each producer when it will push no more.
    void producer_done();
    // Wakes everyone; pushes and pops fail from now on.
    void abort();

    // Ordered mode: tell `window` (as `lane`) each time batches are released.
    void set_window(std::shared_ptr<SequenceWindow> window, size_t lane) {
        window_ = std::move(window);
        lane_ = lane;
    }

    // Live reload (Pipeline::reload) rewires a quiet pipeline:
    // The consumer is done with a batch it popped (idle() counts it until then).
    void done();
    // Nothing queued, and every popped batch done.
    bool idle() const;
    // One more producer (a new input of the stage).
    void add_producer();
    // Ordered mode: the next sequence number to release (a stage added to a
    // running pipeline starts where its extractor is).
    void start_at(uint64_t seq);
    // The stage is removed: its window no longer waits for it.
    void leave_window();

    size_t capacity() const { return capacity_; }
    size_t peak() const;   // most batches ever held at once
    size_t size() const;

private:
    bool can_pop_locked() const;
    // The next batch, if one may be popped (unlocks `lock` when it takes one).
    std::optional<Batch> take_locked(std::unique_lock<std::mutex> &lock);

    const size_t capacity_;
    const bool ordered_;
    size_t producers_;
    size_t in_hand_ = 0; // popped, not yet done()
    bool aborted_ = false;
    size_t peak_ = 0;
    mutable std::mutex mutex_;
    std::condition_variable not_full_, not_empty_;
    std::deque<Batch> fifo_;             // unordered mode, and tail batches
    std::map<uint64_t, Batch> pending_;  // ordered mode: by seq
    uint64_t next_seq_ = 0;
    std::shared_ptr<SequenceWindow> window_;
    size_t lane_ = 0;
};

} // namespace sluice
