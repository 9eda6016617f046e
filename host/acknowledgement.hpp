// At-least-once delivery. Every extractor pull gets an AckToken holding the
// extractor's position after that pull. The token rides (by shared_ptr) on
// every batch made from the pull's records, on every branch, and on the
// dead-letter path; a stage whose records are durable only after its flush
// holds it until then. When the last holder lets go, every record of the pull
// is safe and the token tells its AckTracker, which advances the position it
// may save to the end of the longest run of completed pulls.
#pragma once

#include "pipeline_control.hpp"

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <vector>
#include <mutex>
#include <optional>
#include <string>

namespace sluice {

class AckTracker;

class AckToken {
public:
    AckToken(std::shared_ptr<AckTracker> tracker, uint64_t seq, std::string position, uint64_t records);
    // Which pull this is: the extractor stage, its worker, and the pull's
    // number counted over every run of that worker (1 = its first pull
    // ever). Exactly-once sinks remember the last pull they hold by it.
    const AckTracker &tracker() const { return *tracker_; }
    uint64_t pull() const;
    ~AckToken(); // the pull is complete
    AckToken(const AckToken &) = delete;
    AckToken &operator=(const AckToken &) = delete;

    // A record of the pull was not delivered (on_error "fail"): the position
    // must never move past it.
    void poison() { poisoned_.store(true, std::memory_order_relaxed); }

private:
    std::shared_ptr<AckTracker> tracker_;
    uint64_t seq_;
    std::string position_;
    uint64_t records_;
    std::atomic<bool> poisoned_{false};
};

using AckRef = std::shared_ptr<AckToken>;

// Where tracked pulls come from, and how many pulls of that worker earlier
// runs delivered (pull numbers go on from there).
struct PullOrigin {
    std::string stage;
    uint32_t worker = 0;
    uint64_t pulls_before = 0;
};

// The acknowledged position of one extractor instance. Tokens are issued by
// the extractor's worker, completed from any thread.
class AckTracker : public std::enable_shared_from_this<AckTracker> {
public:
    using Origin = PullOrigin;
    // `restored`: the position this run started from (kept until something
    // newer is acknowledged).
    AckTracker(const PipelineControl &control, std::optional<std::string> restored, Origin origin = {});
    const Origin &origin() const { return origin_; }

    // Called (outside every lock) each time the acknowledged position moves,
    // e.g. to save the state at once. Set before the run starts.
    void on_progress(std::function<void()> fn) { on_progress_ = std::move(fn); }

    // Called (outside the tracker's lock, in order) each time the
    // acknowledged position moves. Set before the run starts.
    // (Replaced by a live reload that gives the extractor new instances.)
    void on_commit(std::function<void(const std::string &)> fn) {
        std::lock_guard lock(notify_mutex_);
        on_commit_ = std::move(fn);
    }

    // [extractor worker] A token for a pull that produced `records` records
    // (failed ones included), after which the extractor is at `position`.
    AckRef issue(std::string position, uint64_t records);

    struct Snapshot {
        std::optional<std::string> position; // safe to resume from
        uint64_t acknowledged = 0;           // records before it, this run
        uint64_t unacknowledged = 0;         // read this run, not yet safe
        uint64_t pulls = 0;                  // pulls delivered, every run counted
    };
    Snapshot snapshot() const;
    // Acknowledged and in-flight records over several trackers (an
    // extractor's workers).
    static Snapshot total(const std::vector<std::shared_ptr<AckTracker>> &trackers);
    // Bumped whenever the snapshot changes (to skip needless writes).
    uint64_t version() const;

private:
    friend class AckToken;
    void complete(uint64_t seq, std::string &&position, uint64_t records, bool poisoned);

    struct Done {
        std::string position;
        uint64_t records;
    };

    const PipelineControl &control_;
    const Origin origin_;
    std::function<void()> on_progress_;
    mutable std::mutex mutex_;
    uint64_t next_seq_ = 0;   // next token to issue
    uint64_t next_done_ = 0;  // first token not yet acknowledged in order
    uint64_t blocked_at_ = UINT64_MAX; // first poisoned token: never passed
    std::map<uint64_t, Done> done_; // completed out of order
    std::optional<std::string> position_;
    uint64_t issued_records_ = 0, acked_records_ = 0;
    uint64_t version_ = 0;
    std::function<void(const std::string &)> on_commit_;
    std::mutex notify_mutex_; // keeps the callbacks in order
};

} // namespace sluice
