// Exactly-once appends (sluice.exactly_once/1): a side file beside the
// output, `<output>.sluice-markers`, with one line per written batch:
// {"length": bytes of the output after the batch, "marker": the host's
// marker}. The batch is synced first, then its line is written, so no line
// ever claims bytes that are not on disk; the lines themselves are synced
// when the host asks (before it saves its state), not once per batch. After a crash the output is cut back to
// the last line's length: what was appended after it had no marker and is
// written again by the resumed run, which skips everything the marker covers.
#pragma once

#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

namespace sluice::plugins {

class MarkerLog {
public:
    struct Entry {
        uint64_t length = 0;
        std::string marker;
    };

    MarkerLog(std::string path, bool fsync) : path_(std::move(path)), fsync_(fsync) {}
    ~MarkerLog();
    MarkerLog(const MarkerLog &) = delete;
    MarkerLog &operator=(const MarkerLog &) = delete;

    const std::string &path() const { return path_; }
    // Opens (creating) the log and returns its last whole entry that fits
    // in an output of `output_size` bytes, if any; the log is rewritten to
    // hold just that entry. Throws sluice::Error naming the file.
    std::optional<Entry> recover(uint64_t output_size);
    // Appends an entry; synced at once with `sync_now`, else by sync().
    // Throws sluice::EnvironmentError (the log then ends as it did before
    // the call).
    void append(uint64_t length, std::string_view marker, bool sync_now);
    // [thread-safe] Makes every entry appended so far durable. Throws
    // sluice::EnvironmentError.
    void sync();

private:
    // Replaces the log by one holding only `last` (temp file, rename).
    void rewrite(const std::optional<Entry> &last);
    static std::string line(uint64_t length, std::string_view marker);

    std::mutex mutex_; // append and rewrite on the worker, sync from the host's state writer
    std::string path_;
    bool fsync_;
    int fd_ = -1;
    uint64_t size_ = 0;    // bytes in the log
    uint64_t entries_ = 0; // since the last rewrite
};

} // namespace sluice::plugins
