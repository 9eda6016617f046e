#include "queue.hpp"

namespace sluice {

BatchQueue::BatchQueue(size_t capacity, bool ordered, size_t producers)
    : capacity_(capacity ? capacity : 1), ordered_(ordered), producers_(producers) {}

bool BatchQueue::push(Batch &&batch) {
    std::unique_lock lock(mutex_);
    if (ordered_ && batch.seq != kTailSeq) {
        // Block only while the consumer has work it can do (the next batch
        // in sequence is here). While it is missing, admit everything: the
        // missing batch may be behind this very producer, and the batches in
        // flight upstream are bounded by the queues and workers there.
        not_full_.wait(lock, [&] {
            return aborted_ || batch.seq == next_seq_ || fifo_.size() + pending_.size() < capacity_ ||
                   pending_.empty() || pending_.begin()->first != next_seq_;
        });
        if (aborted_) return false;
        pending_.emplace(batch.seq, std::move(batch));
    } else if (ordered_) {
        // Flush-time output: never blocks (consumers may be waiting for a
        // sequenced batch), and is small: one batch per instance.
        if (aborted_) return false;
        fifo_.push_back(std::move(batch));
    } else {
        not_full_.wait(lock, [&] { return aborted_ || fifo_.size() < capacity_; });
        if (aborted_) return false;
        fifo_.push_back(std::move(batch));
    }
    size_t held = fifo_.size() + pending_.size();
    if (held > peak_) peak_ = held;
    lock.unlock();
    not_empty_.notify_one();
    return true;
}

bool BatchQueue::can_pop_locked() const {
    if (!ordered_) return !fifo_.empty();
    if (!pending_.empty() && pending_.begin()->first == next_seq_) return true;
    // Once every producer is done nothing else will arrive: drain the rest
    // (sequenced first, in order, then tail batches).
    return producers_ == 0 && (!pending_.empty() || !fifo_.empty());
}

std::optional<Batch> BatchQueue::pop() {
    std::unique_lock lock(mutex_);
    not_empty_.wait(lock, [&] { return aborted_ || can_pop_locked() || producers_ == 0; });
    return take_locked(lock);
}

std::optional<Batch> BatchQueue::pop_until(std::chrono::steady_clock::time_point deadline) {
    std::unique_lock lock(mutex_);
    not_empty_.wait_until(lock, deadline, [&] { return aborted_ || can_pop_locked() || producers_ == 0; });
    return take_locked(lock);
}

std::optional<Batch> BatchQueue::take_locked(std::unique_lock<std::mutex> &lock) {
    if (aborted_ || !can_pop_locked()) return std::nullopt;
    Batch out;
    if (ordered_ && !pending_.empty() && (pending_.begin()->first == next_seq_ || producers_ == 0)) {
        auto it = pending_.begin();
        out = std::move(it->second);
        next_seq_ = it->first + 1;
        pending_.erase(it);
        ++in_hand_;
        uint64_t released = next_seq_;
        lock.unlock();
        if (window_) window_->release_below(lane_, released);
        // The window moved: every blocked producer may now fit.
        not_full_.notify_all();
        not_empty_.notify_one();
        return out;
    }
    out = std::move(fifo_.front());
    fifo_.pop_front();
    ++in_hand_;
    lock.unlock();
    not_full_.notify_one();
    return out;
}

void BatchQueue::done() {
    std::lock_guard lock(mutex_);
    if (in_hand_ > 0) --in_hand_;
}

bool BatchQueue::idle() const {
    std::lock_guard lock(mutex_);
    return fifo_.empty() && pending_.empty() && in_hand_ == 0;
}

void BatchQueue::add_producer() {
    std::lock_guard lock(mutex_);
    ++producers_;
}

void BatchQueue::start_at(uint64_t seq) {
    std::lock_guard lock(mutex_);
    next_seq_ = seq;
}

void BatchQueue::leave_window() {
    if (window_) window_->retire(lane_);
}

void BatchQueue::producer_done() {
    {
        std::lock_guard lock(mutex_);
        if (producers_ > 0) --producers_;
    }
    not_empty_.notify_all();
}

void BatchQueue::abort() {
    {
        std::lock_guard lock(mutex_);
        aborted_ = true;
    }
    not_full_.notify_all();
    not_empty_.notify_all();
}

size_t BatchQueue::peak() const {
    std::lock_guard lock(mutex_);
    return peak_;
}

size_t BatchQueue::size() const {
    std::lock_guard lock(mutex_);
    return fifo_.size() + pending_.size();
}

} // namespace sluice
