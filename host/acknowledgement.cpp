#include "acknowledgement.hpp"

namespace sluice {

AckToken::AckToken(std::shared_ptr<AckTracker> tracker, uint64_t seq, std::string position, uint64_t records)
    : tracker_(std::move(tracker)), seq_(seq), position_(std::move(position)), records_(records) {}

AckToken::~AckToken() { tracker_->complete(seq_, std::move(position_), records_, poisoned_.load()); }

uint64_t AckToken::pull() const { return tracker_->origin().pulls_before + seq_ + 1; }

AckTracker::AckTracker(const PipelineControl &control, std::optional<std::string> restored, Origin origin)
    : control_(control), origin_(std::move(origin)), position_(std::move(restored)) {}

AckRef AckTracker::issue(std::string position, uint64_t records) {
    std::lock_guard lock(mutex_);
    issued_records_ += records;
    ++version_;
    return std::make_shared<AckToken>(shared_from_this(), next_seq_++, std::move(position), records);
}

void AckTracker::complete(uint64_t seq, std::string &&position, uint64_t records, bool poisoned) {
    // Once the run is aborting, batches are dropped from queues unloaded:
    // their tokens going away says nothing about delivery.
    if (control_.aborted()) return;
    // The notify lock is taken first and held across the callback, so
    // callbacks see positions in the order they were committed.
    std::unique_lock notify(notify_mutex_, std::defer_lock);
    if (on_commit_) notify.lock();
    std::unique_lock lock(mutex_);
    if (poisoned && seq < blocked_at_) blocked_at_ = seq;
    done_.emplace(seq, Done{std::move(position), records});
    bool moved = false;
    for (auto it = done_.begin(); it != done_.end() && it->first == next_done_ && next_done_ < blocked_at_;
         it = done_.erase(it)) {
        // An empty position ("cannot say") keeps the last one.
        if (!it->second.position.empty()) position_ = std::move(it->second.position);
        acked_records_ += it->second.records;
        ++next_done_;
        moved = true;
    }
    if (!moved) return;
    ++version_;
    if (on_commit_ && position_) {
        std::string committed = *position_;
        lock.unlock();
        on_commit_(committed);
    } else {
        lock.unlock();
    }
    if (notify.owns_lock()) notify.unlock();
    if (on_progress_) on_progress_();
}

AckTracker::Snapshot AckTracker::snapshot() const {
    std::lock_guard lock(mutex_);
    return Snapshot{position_, acked_records_, issued_records_ - acked_records_, origin_.pulls_before + next_done_};
}

AckTracker::Snapshot AckTracker::total(const std::vector<std::shared_ptr<AckTracker>> &trackers) {
    Snapshot sum;
    for (const auto &t : trackers) {
        Snapshot s = t->snapshot();
        sum.acknowledged += s.acknowledged;
        sum.unacknowledged += s.unacknowledged;
        sum.pulls += s.pulls;
    }
    return sum;
}

uint64_t AckTracker::version() const {
    std::lock_guard lock(mutex_);
    return version_;
}

} // namespace sluice
