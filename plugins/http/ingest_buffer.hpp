// Records accepted over HTTP and not yet pulled into the pipeline: a bounded
// buffer filled by the server's threads and drained by the extractor.
// Whole requests go in or none of their records do (then the client gets
// 429 and sends them again). Records are numbered as they go in; the
// pipeline's acknowledgements (by number) wake the requests waiting for
// their records to be delivered.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace sluice::plugins::http {

class IngestBuffer {
public:
    explicit IngestBuffer(size_t capacity) : capacity_(capacity) {}

    enum class Push { accepted, full, closed };
    // On accepted, `last` is the number of the request's last record.
    Push push_all(std::vector<std::string> &&records, uint64_t &last) {
        std::lock_guard lock(mutex_);
        if (closed_) return Push::closed;
        // A request bigger than the whole buffer still fits into an empty one.
        if (!records_.empty() && records_.size() + records.size() > capacity_) return Push::full;
        for (auto &r : records) records_.push_back(std::move(r));
        pushed_ += records.size();
        last = pushed_;
        return Push::accepted;
    }
    // Up to `max` records, oldest first; `taken()` is then the number of the
    // last one.
    std::vector<std::string> take(size_t max) {
        std::lock_guard lock(mutex_);
        std::vector<std::string> out;
        while (!records_.empty() && out.size() < max) {
            out.push_back(std::move(records_.front()));
            records_.pop_front();
        }
        taken_ += out.size();
        return out;
    }
    uint64_t taken() const {
        std::lock_guard lock(mutex_);
        return taken_;
    }
    void close() {
        std::lock_guard lock(mutex_);
        closed_ = true;
    }
    size_t size() const {
        std::lock_guard lock(mutex_);
        return records_.size();
    }

    // Every record up to number `n` has been delivered.
    void delivered(uint64_t n) {
        std::vector<std::function<void()>> ready;
        {
            std::lock_guard lock(mutex_);
            if (n > delivered_) delivered_ = n;
            auto end = waiters_.upper_bound(delivered_);
            for (auto it = waiters_.begin(); it != end; ++it) ready.push_back(std::move(it->second));
            waiters_.erase(waiters_.begin(), end);
        }
        wake_.notify_all();
        for (auto &fn : ready) fn();
    }
    // No more acknowledgements will come: waiters give up.
    void give_up() {
        std::multimap<uint64_t, std::function<void()>> waiting;
        {
            std::lock_guard lock(mutex_);
            given_up_ = true;
            waiting.swap(waiters_);
        }
        wake_.notify_all();
        for (auto &[n, fn] : waiting) fn();
    }
    // Calls `fn` once, when every record up to number `n` is delivered or
    // the buffer gives up: at once if that is so already, else from the
    // thread that acknowledges. For servers that must not block a thread
    // per waiting request.
    void when_delivered(uint64_t n, std::function<void()> fn) {
        {
            std::lock_guard lock(mutex_);
            if (delivered_ < n && !given_up_) {
                waiters_.emplace(n, std::move(fn));
                return;
            }
        }
        fn();
    }
    bool is_delivered(uint64_t n) const {
        std::lock_guard lock(mutex_);
        return delivered_ >= n;
    }
    enum class Wait { delivered, timed_out, gave_up };
    Wait wait_delivered(uint64_t n, std::chrono::milliseconds timeout) {
        std::unique_lock lock(mutex_);
        bool done = wake_.wait_for(lock, timeout, [&] { return delivered_ >= n || given_up_; });
        if (delivered_ >= n) return Wait::delivered;
        return done ? Wait::gave_up : Wait::timed_out;
    }

private:
    const size_t capacity_;
    mutable std::mutex mutex_;
    std::deque<std::string> records_;
    bool closed_ = false, given_up_ = false;
    uint64_t pushed_ = 0, taken_ = 0, delivered_ = 0;
    std::condition_variable wake_;
    std::multimap<uint64_t, std::function<void()>> waiters_; // by the record number they wait for
};

} // namespace sluice::plugins::http
