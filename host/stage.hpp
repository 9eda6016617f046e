// A pipeline stage at run time: its plugin instances (in this process or in
// worker processes, see stage_instance.hpp), its own thread pool running
// the extractor or processor loop, its input queue, the queues its outputs
// feed, and its error path (failure_router.hpp). Isolated workers that die
// are restarted within max_restarts, the batch in flight is sent again, and
// a batch that kills twice is bisected down to its poison records.
#pragma once

#include "batch.hpp"
#include "crash_reporter.hpp"
#include "emitter.hpp"
#include "failure_router.hpp"
#include "manifest.hpp"
#include "metrics.hpp"
#include "pipeline_control.hpp"
#include "in_process_instance.hpp"
#include "plugin_loader.hpp"
#include "pull_marker.hpp"
#include "queue.hpp"
#include "record_tap.hpp"
#include "restart_budget.hpp"
#include "stage_instance.hpp"

#include <sluice/plugin.h>

#include <boost/asio/thread_pool.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <vector>

namespace sluice {

// What of a stage's settings differs between `running` and `next` that only
// a restart can change ("threads", "on_error", ...), or "".
std::string restart_only_change(const StageSpec &running, const StageSpec &next);

class Stage {
public:
    Stage(StageSpec spec, LoadedStage plugin, PipelineControl &control, std::string base_dir);
    ~Stage(); // stops and destroys instances still alive
    Stage(const Stage &) = delete;
    Stage &operator=(const Stage &) = delete;

    const StageSpec &spec() const { return spec_; }
    const std::string &id() const { return spec_.id; }
    sluice_kind kind() const { return spec_.kind; }
    const LoadedStage &plugin() const { return plugin_; }
    StageMetrics &metrics() { return metrics_; }
    // [control, created] What the plugin declared of its metrics.
    const MetricsDeclaration &declared_metrics() const { return declared_metrics_; }
    const StageMetrics &metrics() const { return metrics_; }

    // [control] Creates the instances (one per worker, or one shared when the
    // plugin is SLUICE_CAP_CONCURRENT). Returns the plugin's message on failure.
    std::string create_instances();
    // [control] For SLUICE_CAP_CONFIG_OUTPUTS stages: takes the output names
    // from the first instance. Returns a message on failure.
    std::string resolve_config_outputs();
    // [control] Starts every instance. Returns a message on failure.
    std::string start_instances();

    // At-least-once delivery (see acknowledgement.hpp).
    // [control, created] Whether this extractor can save and restore its
    // position: its plugin has sluice.checkpoint/1 and each worker its own
    // instance.
    bool can_resume() const;
    size_t instance_count() const { return instances_.size(); }
    // [control, created] Whether the plugin wants to hear when its records
    // are delivered (sluice.acknowledged/1), state or not.
    bool wants_acknowledgements() const;
    // [control, created] Whether records are durable once process returns
    // (otherwise only after flush, at the end of the run).
    bool durable_on_process() const { return durable_on_process_; }
    // [control, created] Hands each instance its saved position (empty: none)
    // and starts tracking acknowledgements from there. Returns a message on
    // failure.
    // `pulls`: how many pulls of each worker earlier runs delivered.
    std::string restore_and_track(const std::vector<std::string> &positions, const std::vector<uint64_t> &pulls = {});
    const std::vector<std::shared_ptr<AckTracker>> &trackers() const { return trackers_; }
    // Exactly-once delivery (sluice.exactly_once/1, see pull_marker.hpp).
    // [control, created] Whether the plugin can store the host's markers.
    bool can_deliver_exactly_once() const { return exactly_once_; }
    // [control, started] Brings the destination back to its last marker and
    // from then on writes every batch with the marker of the pulls it holds.
    // `delivered`: pulls per worker of `extractor` the state says were
    // delivered. `replay_matches`: the extractor reads the same pulls again
    // (same batch size), so those the destination holds are skipped.
    // Returns a message on failure.
    std::string recover_exactly_once(const std::string &extractor, const std::vector<uint64_t> &delivered,
                                     bool replay_matches);
    bool delivers_exactly_once() const { return marker_.has_value(); }
    // [any thread] Makes the markers stored so far durable (before the
    // state is saved). False when the plugin could not.
    bool sync_markers();
    // A source confirms delivery to its clients: markers are made durable
    // after every batch, not only before saves. Set before launch().
    void sync_markers_each_batch(bool on) { sync_each_batch_ = on; }
    // [control, created] What the plugin says the stage reads and writes
    // (sluice.resources/1, JSON), or empty.
    std::string declared_resources() const;
    // [control, created] What the plugin finds missing before a run
    // (sluice.preflight/1), each "FIELD: what is wrong".
    std::vector<std::string> preflight() const;
    // [control] Waits up to `limit` for abandoned (timed-out) calls to
    // return; false if some are still running.
    bool wait_for_abandoned_calls(std::chrono::milliseconds limit);
    // [control] Stops started instances, then destroys all of them.
    void stop_and_destroy();
    // Calls abandoned after timeout_ms (in process) not yet returned.
    int abandoned_calls() const { return abandoned_->load(); }
    // Isolated: its workers died max_restarts times in the last minute.
    bool restarting_in_a_loop() { return spec_.isolation.process && restarts_.spent(); }
    // The last run crashed in this stage (in process) on a batch of pull
    // `pull` of `extractor`'s worker `worker` (extractor empty: unknown).
    // The stage runs in worker processes until its batches come from later
    // pulls, then each worker returns to in process where it can (a plugin
    // that keeps records or state across calls stays isolated for the run).
    // Set before create_instances.
    void isolate_until_past(const std::string &extractor, uint32_t worker, uint64_t pull);

    // Wiring, before launch().
    void set_input(std::shared_ptr<BatchQueue> queue) { input_ = std::move(queue); }
    void connect(uint32_t output, std::shared_ptr<BatchQueue> queue);
    const std::shared_ptr<BatchQueue> &input() const { return input_; }
    // Where the error path sends dead letters (on_error then: dead_letter).
    void set_dead_letter(std::shared_ptr<BatchQueue> queue) { error_path_.set_dead_letter(std::move(queue)); }
    // Extractors: number batches from `window` (see SequenceWindow).
    void set_sequence_window(std::shared_ptr<SequenceWindow> window) { window_ = std::move(window); }
    size_t output_count() const { return plugin_.output_names.size(); }
    int fail_output() const { return fail_output_; } // -1 when none
    // Readers of what the stage sends on its outputs (sluice tap).
    RecordTap &tap() { return tap_; }

    // Starts the workers on the stage's own pool; join() waits for them.
    void launch();
    void join();

    // Live reload (pipeline_reload.cpp): a running stage takes a new config
    // or plugin library. Why this stage cannot take `candidate`'s spec and
    // plugin while running, or "" when it can.
    // (Inputs are the reload's to rewire, not the stage's.)
    std::string replacement_refusal(const StageSpec &spec, const Stage &candidate) const;
    // [control, running] Creates instances of `plugin` with `spec`, then,
    // between two batches (each worker finishes the one it holds), flushes
    // and stops the old instances and starts the new ones: every record is
    // handled by exactly one of the two. `shape` is held exclusively while
    // the stage's spec and plugin change (readers of both hold it shared).
    // Returns "" or why the stage kept its old instances.
    // An extractor is held between two pulls instead, and its new
    // instances go on from the running ones' read positions.
    std::string replace_with(const StageSpec &spec, const LoadedStage &plugin, std::shared_mutex &shape);
    // Live reload of the graph (pipeline_reload.cpp), while it is quiet:
    // extractors hold before their next pull; paused() once every worker
    // still running holds.
    void pause_extraction(bool on);
    bool extraction_paused() const;
    // Workers still running (0: the stage is finished).
    uint32_t workers_running() const { return running_.load(); }
    // The extractor's next sequence number and its window (none when no
    // ordered stage reads it).
    uint64_t next_sequence() const;
    const std::shared_ptr<SequenceWindow> &sequence_window() const { return window_; }
    // Stops sending `output` to `queue`.
    void disconnect(uint32_t output, const std::shared_ptr<BatchQueue> &queue);
    // The stage's inputs as the reloaded manifest has them (wiring done apart).
    void set_inputs(std::vector<InputRef> inputs) { spec_.inputs = std::move(inputs); }
    // The plugin versions the stage ran, oldest first.
    struct PluginEpoch {
        std::string version, library;
        std::chrono::system_clock::time_point since;
    };
    std::vector<PluginEpoch> plugin_history() const;

private:
    RecordTap tap_;
    StageInstance &instance_for(uint32_t worker) { return *instances_[instances_.size() == 1 ? 0 : worker]; }
    // One instance serving every worker (SLUICE_CAP_CONCURRENT, threads > 1).
    bool shares_one_instance() const { return instances_.size() == 1 && spec_.threads > 1; }
    InstanceSetup setup_for(const StageSpec &spec, const LoadedStage &plugin, const std::string &config,
                            uint32_t index, uint32_t count) const;
    std::unique_ptr<StageInstance> make_instance(uint32_t index, uint32_t count, std::string &problem);
    std::unique_ptr<StageInstance> make_instance(const StageSpec &spec, const LoadedStage &plugin,
                                                 const std::string &config, uint32_t index, uint32_t count,
                                                 std::string &problem);
    // The instances a spec and plugin need: one shared by the workers for a
    // concurrent plugin in process, else one per worker. Empty and
    // `problem` set when the plugin refuses.
    std::vector<std::unique_ptr<StageInstance>> make_instances(const StageSpec &spec, const LoadedStage &plugin,
                                                               const std::string &config, std::string &problem);
    // Takes what the instances say of themselves (durability, metrics).
    void adopt_features();
    // Flushes instance `index` (counters of worker `index`) and hands on
    // what it emits and the acknowledgements it held. False on failure.
    bool flush_one(uint32_t index, std::vector<Batch> &outputs, FailureBatch &failures, BatchEmitter &emitter);

    // One process call on records [off, off+count) of `input`: results go
    // into the emitter's outputs and `failures`; inputs the plugin did not
    // account for are failed; a status the ABI does not know is an error.
    CallResult call_once(uint32_t worker, const Batch &input, uint32_t off, uint32_t count, BatchEmitter &emitter,
                         FailureBatch &failures, WorkerCounters &c);
    // call_once, guarded: tried again while it answers SLUICE_RETRY (for up
    // to retry_environment_ms, then the stage fails: fail_environment, and
    // SLUICE_RETRY is returned with the message for its records); when the
    // worker dies, restarted and sent again, then bisected (poison records
    // become failures). Returns SLUICE_OK, SLUICE_ERROR (the whole slice
    // failed: `message`), SLUICE_RETRY or SLUICE_FATAL.
    sluice_status call_guarded(uint32_t worker, const Batch &input, uint32_t off, uint32_t count,
                               std::vector<Batch> &outputs, FailureBatch &failures, BatchEmitter &emitter,
                               WorkerCounters &c, std::string &message);
    // After a death: logs it, counts it and starts a new worker for
    // `worker`. `charged`: the restart counts against max_restarts. False
    // (and `why`) when no worker may or can be started.
    bool replace_dead_worker(uint32_t worker, const WorkerDeath &death, const std::string &during, bool charged,
                             std::string &why);
    // The stage's environment failed for good: the run fails cleanly (what
    // is in flight drains) and whatever still reaches the stage is left
    // undelivered. Returns the message for those records.
    std::string fail_environment(const std::string &cause, int attempts);

    void run_extractor(uint32_t worker);
    void run_processor(uint32_t worker);
    // A loader's commit window: batches already waiting in its queue (or
    // arriving within commit_interval_ms) join `window`, up to about
    // commit_records records or commit_bytes bytes, so that one call (one
    // transaction, one request, one sync) takes them all; their
    // acknowledgements ride with it. Returns how many batches joined.
    // Exactly once (`pulls` given): only batches that are each one pull of
    // the marked extractor that the destination does not hold yet join, and
    // their pulls are added to `pulls` (the window's marker covers them
    // all); the first batch that may not join waits in carried_ for the
    // next call.
    size_t gather_window(Batch &window, std::vector<const AckToken *> *pulls);
    // Whether this stage takes its input in windows: an in-process loader
    // whose plugin asks for them (SLUICE_CAP_COMMIT_WINDOWS).
    bool commits_in_windows() const;
    // Acknowledgements of records a loader has accepted but not yet made
    // durable (sluice.settle/1): they are let go once a later process call
    // on the same instance has returned, or the instance has settled.
    struct UnsettledAcks {
        std::vector<AckRef> acks;
        uint64_t after_call = 0; // released once more calls than this have returned
    };
    // The batch gather_window popped but could not join, else the queue's
    // next. With records unsettled it waits only briefly for the next batch
    // and settles the instance first when none comes: a trickle is
    // acknowledged within milliseconds, not at the next batch.
    std::optional<Batch> next_input(uint32_t worker, UnsettledAcks &unsettled);
    // Holds this batch's acknowledgements until a later call, letting go of
    // those an earlier call held once this one has made them durable.
    void hold_until_settled(uint32_t worker, const std::vector<AckRef> &acks, UnsettledAcks &unsettled);
    // Makes the worker's instance settle; false (and the run failing) when
    // it reports a commit that failed. settle() takes the swap lock and lets
    // the worker's held acknowledgements go; settle_instance() is the call
    // alone, for callers that hold the lock (flush).
    bool settle(uint32_t worker, UnsettledAcks &unsettled);
    bool settle_instance(uint32_t worker);
    // Loader instances of their own whose commits overlap the next call:
    // acknowledgements wait for a later call or settle. Calls that returned
    // per worker, so that "later" can be told.
    bool acks_wait_for_next_call_ = false;
    std::vector<uint64_t> calls_returned_;
    std::optional<Batch> carried_; // only ever set for an exactly-once loader, which runs on one worker
    void flush_instance(uint32_t worker, std::vector<Batch> &outputs, FailureBatch &failures,
                        BatchEmitter &emitter);
    // Hands results on: outputs to their queues, failures to the error path.
    // Returns false when the pipeline is aborting.
    bool deliver(std::vector<Batch> &outputs, FailureBatch &failures, WorkerCounters &c, uint64_t input_count,
                 const std::vector<AckRef> &acks);
    // Tries the records that failed in `failures` again, per the retry
    // policy, adding what they emit to `outputs`.
    void retry_failed(uint32_t worker, const Batch &input, std::vector<Batch> &outputs, FailureBatch &failures,
                      BatchEmitter &emitter, WorkerCounters &c);
    void worker_finished();
    void fatal(const std::string &what);
    // Crash recovery (isolate_until_past): whether `batch` comes from past
    // the crash, and the switch of `worker` back to an in-process instance.
    bool past_the_crash(const Batch &batch) const;
    void return_to_process(uint32_t worker);
    std::string describe() const; // "stage 'x' (transformer map)"

    static const sluice_host *host_table();

    StageSpec spec_;
    LoadedStage plugin_;
    PipelineControl &control_;
    std::string base_dir_;
    std::string config_text_;
    sluice_host host_{};
    crash_reporter::Label label_;
    std::vector<std::unique_ptr<StageInstance>> instances_;
    std::shared_ptr<BatchQueue> input_;
    std::vector<std::vector<std::shared_ptr<BatchQueue>>> outputs_;
    int fail_output_ = -1; // the output named "fail", where rejects go
    StageMetrics metrics_;
    MetricsDeclaration declared_metrics_;
    FailureRouter error_path_{spec_, control_, metrics_};
    RestartBudget restarts_{spec_.isolation.max_restarts};
    std::unique_ptr<boost::asio::thread_pool> pool_;
    std::atomic<uint32_t> running_{0};  // workers not yet finished
    std::atomic<uint32_t> draining_{0}; // workers not yet at end of input
    std::atomic<uint64_t> next_seq_{0};
    std::atomic<uint64_t> limit_taken_{0}; // records granted under spec_.record_limit
    // Workers hold it shared while they handle a batch; a live replacement
    // holds it exclusively between two batches.
    std::shared_mutex swap_mutex_;
    // Set while a replacement waits: workers hold back new batches so that
    // a busy stage cannot keep the replacement waiting (the lock prefers
    // readers).
    std::atomic<bool> swap_pending_{false};
    std::atomic<uint32_t> inputs_ended_{0}; // workers past the end of their input
    std::mutex swap_gate_mutex_;
    std::condition_variable swap_gate_;
    void wait_while_swap_pending();
    std::atomic<bool> pause_requested_{false};
    std::atomic<uint32_t> paused_{0};
    std::mutex pause_mutex_;
    std::condition_variable pause_cv_;
    void hold_while_paused();
    std::string replace_extractor(const StageSpec &spec, const LoadedStage &plugin, std::shared_mutex &shape);
    // The new spec, plugin and started instances become the stage's (the
    // reload's shape lock held; workers between batches or pulls).
    void take(const StageSpec &spec, const LoadedStage &plugin, const std::string &config,
              std::vector<std::unique_ptr<StageInstance>> fresh);
    mutable std::mutex epochs_mutex_;
    std::vector<PluginEpoch> epochs_;
    std::shared_ptr<SequenceWindow> window_;
    std::shared_ptr<std::atomic<int>> abandoned_ = std::make_shared<std::atomic<int>>(0);
    std::atomic<bool> refusal_logged_{false}, unaccounted_logged_{false};
    struct CrashRecovery {
        std::string extractor; // empty: isolated for the whole run
        uint32_t worker = 0;
        uint64_t pull = 0;
    };
    std::optional<CrashRecovery> recovery_;
    // Exactly once: the marker of what the destination holds, what it held
    // before this run (pulls read again are skipped), and the marker text
    // for the batch being written. Used by the stage's one worker only.
    bool exactly_once_ = false;
    std::optional<PullMarker> marker_, already_held_;
    std::string current_marker_;
    bool sync_each_batch_ = false;
    // The pull a batch came from when it is one pull of the marked extractor.
    const AckToken *marked_pull(const Batch &batch) const;
    // Whether the destination held `pull` before this run (it is skipped).
    bool held_already(const AckToken &pull) const;
    std::atomic<bool> environment_failed_{false};
    std::mutex environment_mutex_;
    std::string environment_failure_;
    // Delivery: one tracker per extractor instance (empty when the run keeps
    // no state); a stage whose records are durable only after its flush
    // holds the acknowledgements of what it took in until then.
    std::vector<std::shared_ptr<AckTracker>> trackers_;
    bool durable_on_process_ = true;
    std::mutex held_mutex_;
    std::vector<std::vector<AckRef>> held_; // per instance

    friend struct HostServices;
};

} // namespace sluice
