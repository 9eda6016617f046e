// How the host and a `sluice-worker` process talk. A control channel (a
// SOCK_SEQPACKET socket pair: every message arrives whole) carries small
// messages; two shared-memory regions (memfd) carry the bulk: the host
// writes a call's input records into one, the worker writes the call's log
// (call_log.hpp) into the other. Records are read in place: no copy beyond
// the one into shared memory, no per-record system call.
//
// One exchange at a time: the host sends a command and waits for its reply;
// during a call the worker may send log lines and counters first. Only
// `acknowledged` has no reply.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace sluice::worker {

// The worker's descriptors, as the host sets them up.
constexpr int kChannelFd = 3;
constexpr int kInputFd = 4;  // host writes, worker reads
constexpr int kOutputFd = 5; // worker writes, host reads

enum class Op : uint32_t {
    // host -> worker
    init = 1, // input: InitArgs; reply: a = feature bits, b = output count, out = the declared
              // metrics (MetricsDeclaration::encode), text = create's message
    start,
    stop,
    pull,          // a = max records; reply: a = end of input, out = log then position (b bytes)
    process,       // a = count, b = marker bytes after the records (0: plain process)
    flush,         // reply: out = log
    restore,       // input: position (a bytes)
    acknowledged,  // text = position; no reply
    recover,       // reply: out = marker (b bytes)
    sync_markers,
    outputs,       // reply: a = count, out = names, NUL-terminated
    resources,     // reply: out = JSON (b bytes)
    quit,          // destroy and exit; no reply
    preflight = 20, // reply: out = problems, one per line (b bytes)
    // worker -> host
    reply = 100, // status, text = the plugin's message when not OK
    log,         // a = level, text = line
    counter,     // text = name, value = delta
};

struct Header {
    Op op;
    int32_t status = 0;
    uint32_t a = 0, b = 0;
    uint64_t out_bytes = 0; // bytes of results in the output region
    int64_t value = 0;
    uint32_t text_len = 0;
    uint32_t reserved = 0;
};
constexpr size_t kMaxMessage = 64 * 1024;
constexpr size_t kMaxText = kMaxMessage - sizeof(Header);

// Feature bits of the init reply.
enum : uint32_t {
    kHasCheckpoint = 1,
    kHasAcknowledged = 2,
    kHasExactlyOnce = 4,
    kHasSyncMarkers = 8,
    kHasDelivery = 16,
    kDurableOnProcess = 32,
};

// The start of the input region: flags the worker reads during calls.
struct SharedFlags {
    std::atomic<uint32_t> stop_requested{0};
};
constexpr size_t kInputDataOffset = 64;

// A shared-memory region: a memfd mapped over a large window of address
// space of which only what has been written is backed. The writer grows
// the file before it writes; the reader reads within what it is told.
class SharedRegion {
public:
    static constexpr size_t kWindow = size_t(1) << 30; // the most one call may carry
    SharedRegion() = default;
    ~SharedRegion();
    SharedRegion(const SharedRegion &) = delete;
    SharedRegion &operator=(const SharedRegion &) = delete;

    // A new region (host side). Empty string or the error.
    std::string create(const char *name);
    // The region at `fd` (worker side).
    std::string attach(int fd);
    int fd() const { return fd_; }
    char *data() const { return base_; }
    // Makes [0, bytes) writable; false when it would pass the window.
    bool reserve(size_t bytes);
    // What the file holds now: bytes past it must not be read (SIGBUS).
    size_t file_size() const;
    // Copies `bytes` to `offset`, growing the region as needed.
    bool write(size_t offset, std::string_view bytes);

private:
    std::string map();
    int fd_ = -1;
    char *base_ = nullptr;
    size_t size_ = 0; // bytes of the file
};

// Channel I/O. send returns false when the peer is gone (or, with `wait`
// false, when the channel is full).
bool send_message(int fd, const Header &h, std::string_view text = {}, bool wait = true);
// Blocks for the next message; false on end of file or error.
bool receive_message(int fd, Header &h, std::string &text);

// Init arguments, in the input region.
struct InitArgs {
    std::string library, plugin, stage_id, config_json, base_dir;
    std::string sha256; // the library's pin ("" for none), checked before loading
    uint32_t kind = 0, worker_index = 0, worker_count = 1, log_level = 2;
    uint32_t check_trust = 1; // refuse a library file others could write
    std::string encode() const;
    bool decode(std::string_view bytes);
};

} // namespace sluice::worker
