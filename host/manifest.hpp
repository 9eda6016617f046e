// The pipeline manifest: a JSON (or YAML) file naming the stages, their plugins, their
// config and how records flow. Parsing checks everything that can be checked
// without loading plugins and reports each problem with its JSON path.
#pragma once

#include "document.hpp"
#include "error_policy.hpp"
#include "run_thresholds.hpp"

#include <sluice/plugin.h>

#include <boost/json.hpp>

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace sluice {

// One input of a stage: the output `output` (empty: the stage's first) of
// stage `stage`, written "stage" or "stage.output" in the manifest.
struct InputRef {
    std::string stage;
    std::string output;
    size_t from = 0;       // index of `stage` in Manifest::stages, once resolved
    std::string json_path; // "/stages/3/inputs/0", or the stage's path when implicit
};

// Whether a stage's plugin runs in worker processes, and their limits.
struct Isolation {
    bool process = false;         // "isolation": "process" (default "none")
    uint32_t memory_limit_mb = 0; // a worker above it is killed (0: none)
    uint32_t max_restarts = 5;    // worker deaths per minute before on_error
};

struct StageSpec {
    std::string id;
    sluice_kind kind = 0;
    std::string plugin;                 // stage name inside a plugin library
    std::optional<std::string> library; // explicit .so path (resolved)
    std::string sha256;                 // the library's pinned SHA-256 (lowercase hex), "" when not pinned
    bool allow_untrusted_plugin = false; // the manifest's allow_untrusted_plugins (for worker processes)
    boost::json::object config;
    boost::json::object raw_config; // as written, before ${...} references were resolved
    uint32_t threads = 1;
    uint32_t queue_capacity = 8; // batches waiting in front of this stage
    uint32_t batch_size = 1024;  // records per pull/process call
    uint32_t timeout_ms = 0;     // longest a process call may take (0: no limit)
    // How long a call answering SLUICE_RETRY (the destination or source
    // cannot take anything: disk full, connection lost) is tried again
    // before the stage fails the run.
    uint32_t retry_environment_ms = 30000;
    Isolation isolation;
    // Loaders: batches already waiting in the input queue join the one
    // taken, into one call (one transaction, one request) of up to about
    // commit_records records or commit_bytes bytes; commit_interval_ms
    // waits that long for more (0: never waits). 1 record: a call per batch.
    uint32_t commit_records = 16384;
    uint32_t commit_bytes = 16u << 20;
    uint32_t commit_interval_ms = 0;
    // Extractors: read no more records than this (0: no limit); set by
    // `sluice run --dry-run --limit N`, not by the manifest.
    uint64_t record_limit = 0;
    // Extractors: tell the plugin when its records are delivered
    // (sluice.acknowledged/1: it confirms them to its source, an XACK, an
    // offset commit, an HTTP answer). A dry run delivers nothing, so it
    // confirms nothing: what it read stays unconfirmed at the source.
    bool confirm_delivery = true;
    bool ordered = false;        // receive batches in extraction order
    bool ordered_explicit = false;
    std::vector<InputRef> inputs; // where records come from (none for extractors)
    bool inputs_implicit = false; // no "inputs": the previous stage in manifest order
    ErrorPolicy on_error;          // what happens to records it fails on
    std::string on_error_path;     // "/stages/2/on_error" (or "/defaults/on_error")
    std::string json_path;        // "/stages/2", for messages
};

struct Manifest {
    std::string path;                     // the file as given
    std::string hash;                     // "fnv1a64:<16 hex>" of its text: which version ran
    std::string base_dir;                 // its directory (for relative paths)
    std::string name;                     // pipeline name
    std::vector<std::string> plugin_dirs; // resolved against base_dir
    // Load plugin files that others could have written (plugin_trust.hpp),
    // with a warning; also --allow-untrusted-plugins.
    bool allow_untrusted_plugins = false;
    std::vector<StageSpec> stages;        // in manifest order
    // Delivery: where resumable extractors' positions are saved (resolved;
    // empty: no state, every run starts afresh), and the least time between
    // two saves (0: as soon as an acknowledgement moves a position; unset:
    // that when a loader delivers at least once, else a second).
    std::string state_dir;
    std::optional<uint32_t> checkpoint_interval_ms;
    // What batches may hold in all, wherever they are (memory_budget.hpp).
    uint32_t memory_limit_mb = 512;
    // When a finished run still exits non-zero (run_thresholds.hpp).
    RunThresholds thresholds;
    // The admin endpoint (admin_server.hpp), when the manifest asks for one.
    struct Admin {
        std::string address = "127.0.0.1";
        int port = 0;
        std::string token_env; // variable holding the bearer token; "" for none
    };
    std::optional<Admin> admin;
    // Where each JSON path is written (YAML), for messages found later.
    SourcePositions positions;
};

// One or more problems, each a one-line message "FILE: /json/path: what".
class ManifestError : public std::runtime_error {
public:
    explicit ManifestError(std::vector<std::string> messages);
    const std::vector<std::string> &messages() const { return messages_; }

private:
    std::vector<std::string> messages_;
};

Manifest load_manifest(const std::string &path);
// `path` is used in messages and to resolve relative paths.
Manifest parse_manifest(const std::string &text, const std::string &path);

} // namespace sluice
