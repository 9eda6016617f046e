#include "sequence_window.hpp"

#include <algorithm>

namespace sluice {

std::optional<uint64_t> SequenceWindow::acquire() {
    std::unique_lock lock(mutex_);
    // (oldest_ may be past next_: every lane retired.)
    cv_.wait(lock, [&] { return aborted_ || oldest_ > next_ || next_ - oldest_ < size_; });
    if (aborted_) return std::nullopt;
    return next_++;
}

void SequenceWindow::release_below(size_t lane, uint64_t seq) {
    {
        std::lock_guard lock(mutex_);
        if (lane >= released_.size() || seq <= released_[lane]) return;
        released_[lane] = seq;
        uint64_t oldest = *std::min_element(released_.begin(), released_.end());
        if (oldest == oldest_) return;
        oldest_ = oldest;
    }
    cv_.notify_all();
}

uint64_t SequenceWindow::next() {
    std::lock_guard lock(mutex_);
    return next_;
}

size_t SequenceWindow::add_lane() {
    std::lock_guard lock(mutex_);
    released_.push_back(next_); // everything before it went elsewhere
    return released_.size() - 1;
}

void SequenceWindow::retire(size_t lane) {
    {
        std::lock_guard lock(mutex_);
        if (lane >= released_.size()) return;
        released_[lane] = UINT64_MAX;
        oldest_ = *std::min_element(released_.begin(), released_.end());
    }
    cv_.notify_all();
}

void SequenceWindow::abort() {
    {
        std::lock_guard lock(mutex_);
        aborted_ = true;
    }
    cv_.notify_all();
}

} // namespace sluice
