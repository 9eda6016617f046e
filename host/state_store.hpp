// The pipeline's state file: each resumable extractor's acknowledged
// position, saved atomically (temp file, fsync, rename, fsync of the
// directory) so a crash leaves either the old state or the new one, never a
// torn one. A lock file keeps two runs from sharing it.
#pragma once

#include "acknowledgement.hpp"
#include "pipeline_control.hpp"

#include <boost/json.hpp>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace sluice {

class StateError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

class StateStore {
public:
    // Creates `dir` if needed, takes the lock and reads
    // `<dir>/<pipeline>.state.json` if it exists. Throws StateError with a
    // one-line message naming the file.
    StateStore(const std::string &dir, const std::string &pipeline);
    ~StateStore(); // stops the writer (without a last write) and unlocks
    StateStore(const StateStore &) = delete;
    StateStore &operator=(const StateStore &) = delete;

    const std::string &path() const { return path_; }

    struct SavedStage {
        std::string plugin;
        std::vector<std::string> positions; // one per worker
        std::vector<uint64_t> pulls;        // pulls delivered, per worker, every run counted
        uint32_t batch_size = 0;            // records per pull then (0: not saved)
        uint64_t unacknowledged = 0;        // read but not safe when saved
    };
    // What an earlier run saved for `stage`, if anything.
    std::optional<SavedStage> saved(const std::string &stage) const;

    // Saves the positions of `workers` (one tracker per worker) under
    // `stage` from now on.
    void track(const std::string &stage, const std::string &plugin, uint32_t batch_size,
               std::vector<std::shared_ptr<AckTracker>> workers);

    // Called before each save, after the positions to save are read: what
    // must be durable before the state says so (exactly-once loaders'
    // markers). A false return skips that save. Set before start().
    void before_save(std::function<bool()> fn) { before_save_ = std::move(fn); }

    // Saves in the background as soon as an acknowledgement moves a
    // position, so that a crash reads again little more than what was in
    // flight; with `min_interval` > 0, at most once per that time.
    void start(std::chrono::milliseconds min_interval);
    // Stops the writer, then saves one last time, also when the run failed
    // or aborted: what was delivered before that stays delivered.
    // Returns an error message, or empty.
    std::string finish();

    // Records acknowledged / not yet, summed over every tracked stage.
    uint64_t acknowledged() const;
    uint64_t unacknowledged() const;

private:
    struct Tracked {
        std::string plugin;
        uint32_t batch_size = 0;
        std::vector<std::shared_ptr<AckTracker>> workers;
    };
    void load(); // reads the saved state, checking its shape
    // Writes the file if anything changed. Returns an error message.
    std::string save(bool force);
    void writer_loop(std::chrono::milliseconds interval);

    std::string path_, lock_path_;
    int lock_fd_ = -1;
    boost::json::object saved_stages_; // as read, for stages this run leaves alone
    std::map<std::string, Tracked> tracked_;
    uint64_t written_version_ = UINT64_MAX;
    std::mutex save_mutex_; // one save at a time

    std::mutex mutex_;
    std::condition_variable wake_;
    bool stopping_ = false;
    bool dirty_ = false; // an acknowledgement moved since the last save
    std::function<bool()> before_save_;
    std::thread writer_;
};

} // namespace sluice
