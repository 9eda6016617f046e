// State shared by every stage of one run: the stop and abort flags, the
// record id source, and the first fatal error.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>

namespace sluice {

class PipelineControl {
public:
    // Graceful stop (first signal): extractors stop, everything in flight
    // drains and is flushed.
    void request_stop();
    bool stop_requested() const { return stop_.load(std::memory_order_relaxed); }

    // The run has failed but may finish cleanly (an on_error "fail" policy):
    // extraction stops, what is in flight drains and loaders flush, and the
    // run reports failure. The first message is kept.
    void fail(const std::string &message);
    bool failed() const { return failed_.load(std::memory_order_relaxed); }

    // Fatal failure: every stage stops at once, nothing more is flushed.
    // The first message is kept for the report.
    void abort(const std::string &message);
    bool aborted() const { return aborted_.load(std::memory_order_relaxed); }
    std::string abort_message() const; // or the fail() message

    // Called (once) when abort() is first called, e.g. to wake queues.
    void on_abort(std::function<void()> fn) { on_abort_ = std::move(fn); }

    // Sleeps up to `d`, waking early on abort (and on stop if `wake_on_stop`).
    // Returns false if woken early.
    bool sleep_for(std::chrono::milliseconds d, bool wake_on_stop);

    // Ids for new records: a contiguous range of `n`.
    uint64_t allocate_ids(uint64_t n) { return next_id_.fetch_add(n, std::memory_order_relaxed); }

private:
    std::atomic<bool> stop_{false}, aborted_{false}, failed_{false};
    std::atomic<uint64_t> next_id_{1};
    mutable std::mutex mutex_;
    std::condition_variable wake_;
    std::string abort_message_;
    std::function<void()> on_abort_;
};

} // namespace sluice
