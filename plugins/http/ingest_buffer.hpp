// Records accepted over HTTP and not yet pulled into the pipeline: a bounded
// buffer filled by the server's threads and drained by the extractor.
// Whole requests go in or none of their records do (then the client gets
// 429 and sends them again).
#pragma once

#include <deque>
#include <mutex>
#include <string>
#include <vector>

namespace sluice::plugins::http {

class IngestBuffer {
public:
    explicit IngestBuffer(size_t capacity) : capacity_(capacity) {}

    enum class Push { accepted, full, closed };
    Push push_all(std::vector<std::string> &&records) {
        std::lock_guard lock(mutex_);
        if (closed_) return Push::closed;
        // A request bigger than the whole buffer still fits into an empty one.
        if (!records_.empty() && records_.size() + records.size() > capacity_) return Push::full;
        for (auto &r : records) records_.push_back(std::move(r));
        return Push::accepted;
    }
    // Up to `max` records, oldest first.
    std::vector<std::string> take(size_t max) {
        std::lock_guard lock(mutex_);
        std::vector<std::string> out;
        while (!records_.empty() && out.size() < max) {
            out.push_back(std::move(records_.front()));
            records_.pop_front();
        }
        return out;
    }
    void close() {
        std::lock_guard lock(mutex_);
        closed_ = true;
    }
    size_t size() const {
        std::lock_guard lock(mutex_);
        return records_.size();
    }

private:
    const size_t capacity_;
    mutable std::mutex mutex_;
    std::deque<std::string> records_;
    bool closed_ = false;
};

} // namespace sluice::plugins::http
