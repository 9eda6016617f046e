// One instance of a stage's plugin, as the stage's workers see it. Two
// kinds: in this process (InProcessInstance, the plugin's functions called
// directly) and in a worker process (IsolatedInstance, the same calls sent
// to `sluice-worker`). The stage runtime cannot tell them apart except that
// an isolated instance's worker may die, and can then be made anew.
#pragma once

#include "metrics_declaration.hpp"

#include <sluice/plugin.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace sluice {

class BatchEmitter;

// How a worker process ended during a call.
struct WorkerDeath {
    // not_running: the last worker died and no new one was allowed.
    enum class Cause { signal, exit, memory_limit, timeout, protocol, not_running };
    Cause cause;
    std::string what; // "SIGSEGV", "exit code 3", "memory limit (64 MB)", "timed out after 500 ms"
    // The report's name for the cause: "SIGSEGV", "exit", "memory_limit",
    // "timeout", "protocol".
    std::string report_key() const;
};

struct CallResult {
    sluice_status status = SLUICE_OK;
    std::string message; // the plugin's message when status is not OK
    // The worker died during the call: nothing it emitted counts.
    std::optional<WorkerDeath> death;
    bool ok() const { return status == SLUICE_OK && !death; }
};

// The plugin extensions an instance offers (what the host may ask of it).
struct InstanceFeatures {
    bool checkpoint = false;   // sluice.checkpoint/1
    bool acknowledged = false; // sluice.acknowledged/1
    bool exactly_once = false; // sluice.exactly_once/1 (loaders)
    bool sync_markers = false; // ... with sync_markers
    std::optional<bool> durable_on_process; // sluice.delivery/1, when offered
    // sluice.settle/1: what a process call accepted is durable once the next
    // call returns or settle() does (in process only: a worker process
    // settles after every call itself).
    bool settle = false;
    MetricsDeclaration metrics;             // sluice.metrics/1
};

class StageInstance {
public:
    virtual ~StageInstance() = default; // stops it if started, then destroys it

    // [control] Acquires resources. Returns the plugin's message on failure.
    virtual std::string start() = 0;
    // [control] Releases them, if started; a failure is logged.
    virtual void stop() = 0;

    virtual const InstanceFeatures &features() const = 0;
    // [control, created] Names of config-chosen outputs (sluice.outputs/1);
    // empty with `problem` set when the plugin cannot say.
    virtual std::vector<std::string> config_outputs(std::string &problem) = 0;
    // [control, created] sluice.resources/1 as JSON, or empty.
    virtual std::string resources() = 0;
    // [control, created] sluice.preflight/1: problems, one per line
    // ("field: what"), or empty when all is well or nothing is checked.
    virtual std::string preflight() = 0;

    // [worker, started] The calls. The caller has set the emitter's input
    // to the records of the call; results go into it.
    virtual CallResult pull(BatchEmitter &out, uint32_t max_records, bool &end_of_input) = 0;
    // `marker`: exactly-once loaders write the batch with this marker.
    virtual CallResult process(const sluice_record *records, uint32_t count, BatchEmitter &out,
                               const std::string *marker) = 0;
    virtual CallResult flush(BatchEmitter &out) = 0;
    // features().settle: waits until everything accepted is durable.
    virtual CallResult settle() = 0;

    // Extractors that resume (features().checkpoint).
    virtual std::string position() = 0;                            // [worker] after a pull
    virtual std::string restore(const std::string &position) = 0;  // [control] "" or the message
    virtual void acknowledged(const std::string &position) = 0;    // [any]
    // Exactly-once loaders: the marker the destination holds ("" none).
    virtual CallResult recover(std::string &marker) = 0; // [control, started]
    virtual bool sync_markers() = 0;                     // [any, started]

    // Isolation. An isolated instance's worker can die; restart() makes a
    // new one (create, start, and for an extractor the last position it
    // pulled to). Returns "" or why it could not.
    virtual bool isolated() const = 0;
    virtual std::string restart() = 0;
    // The most memory its workers have used (resident, MB; 0 in process).
    virtual uint64_t peak_rss_mb() const = 0;
};

} // namespace sluice
