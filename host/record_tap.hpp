// Taps on a stage's outputs: `sluice tap` shows the records flowing out of a
// stage of a running pipeline. Never slows the pipeline: with no reader the
// stage pays one relaxed load per output batch; with one, it copies what the
// reader has room for and drops the rest (counted), and never waits for a
// lock another thread holds.
#pragma once

#include <sluice/plugin.h>

#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace sluice {

// One reader's view: lines (a record each, as NDJSON) waiting to be read.
class TapSubscription {
public:
    TapSubscription(size_t output, size_t capacity) : output_(output), capacity_(capacity) {}
    size_t output() const { return output_; }

    // Up to `max` lines, oldest first; none when nothing came.
    std::vector<std::string> take(size_t max);
    uint64_t dropped() const { return dropped_.load(std::memory_order_relaxed); }
    uint64_t offered() const { return offered_.load(std::memory_order_relaxed); }

    // [stage thread] Adds a line if there is room and the lock is free.
    void offer(std::string line);

private:
    const size_t output_, capacity_;
    std::mutex mutex_;
    std::deque<std::string> lines_;
    std::atomic<uint64_t> dropped_{0}, offered_{0};
};

class RecordTap {
public:
    // [any thread] A new reader of `output`, holding at most `capacity` lines.
    std::shared_ptr<TapSubscription> subscribe(size_t output, size_t capacity);

    bool active() const { return readers_.load(std::memory_order_relaxed) > 0; }
    // [stage thread] Offers a batch sent on `output` to its readers.
    void offer(size_t output, const sluice_record *records, size_t count);

private:
    std::mutex mutex_;
    std::vector<std::weak_ptr<TapSubscription>> subscriptions_;
    std::atomic<size_t> readers_{0};
};

// A record as one NDJSON line: a JSON payload as it is, anything else as
// {"id": N, "content_type": "...", "text": "..."} (bytes that are not UTF-8
// replaced).
std::string tap_line(const sluice_record &r);

} // namespace sluice
