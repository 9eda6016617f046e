#include "sequence_window.hpp"

namespace sluice {

std::optional<uint64_t> SequenceWindow::acquire() {
    std::unique_lock lock(mutex_);
    cv_.wait(lock, [&] { return aborted_ || next_ < released_ + size_; });
    if (aborted_) return std::nullopt;
    return next_++;
}

void SequenceWindow::release_below(uint64_t seq) {
    {
        std::lock_guard lock(mutex_);
        if (seq <= released_) return;
        released_ = seq;
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
