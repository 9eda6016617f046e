// A pipeline built from a manifest: plugins resolved, configs checked, stage
// instances created, queues wired. run() executes it to the end.
#pragma once

#include "manifest.hpp"
#include "pipeline_control.hpp"
#include "plugin_loader.hpp"
#include "stage.hpp"
#include "state_store.hpp"

#include <boost/json.hpp>

#include <atomic>
#include <chrono>
#include <functional>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <memory>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

namespace sluice {

// Problems found while building a pipeline, one line each.
class SetupError : public std::runtime_error {
public:
    explicit SetupError(std::vector<std::string> messages);
    const std::vector<std::string> &messages() const { return messages_; }

private:
    std::vector<std::string> messages_;
};

struct RunOptions {
    bool handle_signals = false; // SIGINT/SIGTERM: first drains, second exits
    // With handle_signals: what SIGHUP does (a live reload); none: ignored.
    std::function<void()> on_sighup;
};

// What a live reload did (Pipeline::reload).
struct ReloadOutcome {
    bool applied = false;              // false: refused, the pipeline runs as before
    std::vector<std::string> changes;  // "stage 'x': config changed", one per replaced stage
    std::vector<std::string> problems; // why it was refused
    std::vector<std::string> notes;    // what changed but waits for a restart
    boost::json::object to_json() const;
};

struct RunResult {
    std::string status; // "completed", "stopped" (by a signal) or "failed"
    int exit_code = 0;
    std::string error; // why it failed
    // Plugin calls abandoned after timeout_ms that had still not returned at
    // the end: the process should exit without running destructors.
    bool calls_still_running = false;
    // At-least-once delivery, when the manifest sets state_dir: the state
    // file, whether the run resumed, records replayed and acknowledged.
    boost::json::object delivery;
    // The memory budget and the most that batches held at once.
    boost::json::object memory;
    boost::json::object report;
};

class Pipeline {
public:
    // Loads every stage's plugin, checks each config against the plugin's
    // schema and lets each plugin check it by creating its instances (which
    // has no side effects). Throws SetupError listing every problem.
    explicit Pipeline(Manifest manifest);
    ~Pipeline();

    const Manifest &manifest() const { return manifest_; }
    const std::vector<std::unique_ptr<Stage>> &stages() const { return stages_; }
    PipelineControl &control() { return control_; }

    // The stages named as some stage's dead-letter destination: what they
    // load is failed records, not delivered data.
    std::set<std::string> dead_letter_stages() const;

    // A human-readable outline of the stages and where each output goes.
    std::string describe() const;
    // The graph in Graphviz DOT.
    std::string dot() const;

    // Runs to the end of input (or a stop), then stops and destroys the
    // instances. Call once.
    RunResult run(const RunOptions &options);

    // [control, before run] Asks every stage to check what it needs without
    // changing anything (sluice.preflight/1): one line per problem,
    // "FILE: /stages/N/config/FIELD: what is wrong".
    std::vector<std::string> preflight() const;

    // Where a run is, for the admin endpoint (any thread).
    enum class Phase { created, starting, running, finishing, finished };
    Phase phase() const { return phase_.load(); }
    // The report of the run so far (status "starting", "running" ...); once
    // the run has finished, its final report.
    boost::json::object live_report() const;
    // Why the pipeline is not ready to take work (empty: ready): not yet
    // started or already finishing, a stage with a call stuck past its
    // timeout, a stage restarting its workers in a loop.
    std::vector<std::string> not_ready() const;

    // [any thread, while running] Applies `next` (the manifest read again)
    // to the running pipeline: everything is checked first (plugins load,
    // configs pass their schemas and plugins, changed stages' preflight);
    // a manifest with a problem is refused and nothing changes. Stages
    // whose config or plugin library changed are replaced between two
    // batches (Stage::replace_with), the others keep running; stages added
    // or removed and inputs rewired are applied while extraction pauses and
    // nothing is in flight (reload_graph). Changes that need a restart (an
    // extractor added or removed, or changed without a position to go on
    // from, threads, on_error) refuse the reload, naming them.
    ReloadOutcome reload(Manifest next);
    // Readers of stages' specs and plugins from other threads (the admin
    // endpoint, the progress line) hold this while they read.
    std::shared_lock<std::shared_mutex> read_lock() const { return std::shared_lock(shape_mutex_); }

private:
    uint32_t output_index(const InputRef &r) const;
    // Messages "FILE: /path: what" with the line and column of a YAML
    // manifest.
    std::vector<std::string> placed(std::vector<std::string> messages) const;
    // Live reload of the graph (stages added or removed, inputs changed):
    // extraction pauses, everything in flight drains, the pipeline is
    // rewired, extraction resumes.
    ReloadOutcome reload_graph(Manifest next, Pipeline &candidate, ReloadOutcome out);
    // Pauses every extractor and waits until no batch is queued or being
    // handled anywhere; false (and resumed) after `limit`.
    bool quiesce(std::chrono::milliseconds limit);
    void resume_extraction();
    // Opens the state, restores resumable extractors and starts tracking
    // their acknowledgements. Returns a message on failure.
    std::string open_state(RunResult &result);
    // Warns when a source that confirms delivery to its clients feeds a
    // loader that makes records durable only at the end of the run.
    void warn_about_late_confirmations() const;
    // Warns when this process runs as root with a listening socket (an
    // ingest, the admin endpoint): what it exposes runs as root.
    void warn_if_root_listening() const;
    // Warns at setup when the settings let more batches be in flight than
    // the memory budget holds at a typical record size.
    void warn_about_memory() const;
    // Picks the loaders that deliver exactly once (open_state) and, once
    // they are started, recovers them (recover_exactly_once). A message on
    // failure.
    void plan_exactly_once(RunResult &result);
    std::string recover_exactly_once();

    Manifest manifest_;
    std::atomic<Phase> phase_{Phase::created};
    std::chrono::system_clock::time_point started_wall_{};
    std::chrono::steady_clock::time_point started_{};
    PipelineControl control_;
    std::vector<std::unique_ptr<Stage>> stages_;
    // Stages a reload removed: stopped, kept until the run's threads are joined.
    std::vector<std::unique_ptr<Stage>> retired_;
    std::vector<std::shared_ptr<BatchQueue>> queues_;
    std::vector<std::shared_ptr<SequenceWindow>> windows_;
    std::unique_ptr<StateStore> state_;
    struct ExactlyOnce {
        size_t sink;
        size_t extractor;
        std::vector<uint64_t> delivered; // pulls per worker, as the state says
        bool replay_matches;             // same batch size as when saved
    };
    std::vector<ExactlyOnce> exactly_once_;
    // In-process crashes (crash_reporter.hpp): where a crash leaves its
    // marker, and whether the last run left one (its stage runs isolated).
    std::string crash_marker_path_;
    bool recovering_from_crash_ = false;
    // What the admin endpoint shows besides the live counts: the delivery
    // plan (state file, exactly-once loaders) once the run has started, and
    // the final report once it has finished.
    mutable std::mutex report_mutex_;
    boost::json::object delivery_plan_;
    std::optional<boost::json::object> final_report_;
    // The run's end: keeps its report for live_report(), then says finished.
    void publish_final_report(const RunResult &result);
    // Live reload: one at a time, and not while the run winds down.
    std::mutex reload_mutex_;
    mutable std::shared_mutex shape_mutex_;
};

} // namespace sluice
