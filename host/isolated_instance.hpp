// A stage instance in a worker process ("isolation": "process"): every call
// is sent to a `sluice-worker` that holds the plugin's instance, with the
// records in shared memory; its results come back as a call log replayed
// into the host's emitter. Log lines and counters the plugin sends arrive
// as they happen; the stop flag is passed on. A worker that crashes, passes
// its memory limit or overruns its time limit is dead: the call reports the
// death, and restart() starts a new worker.
#pragma once

#include "in_process_instance.hpp"
#include "metrics.hpp"
#include "pipeline_control.hpp"
#include "stage_instance.hpp"
#include "worker_process.hpp"

#include <memory>
#include <mutex>
#include <string>

namespace sluice {

class IsolatedInstance final : public StageInstance {
public:
    // Starts a worker and creates the instance in it. Null with `problem`
    // set when either fails.
    static std::unique_ptr<IsolatedInstance> create(const InstanceSetup &setup, const WorkerLimits &limits,
                                                    PipelineControl &control, StageMetrics &metrics,
                                                    std::string &problem);
    ~IsolatedInstance() override;

    std::string start() override;
    void stop() override;
    const InstanceFeatures &features() const override { return features_; }
    std::vector<std::string> config_outputs(std::string &problem) override;
    std::string resources() override;
    std::string preflight() override;
    CallResult pull(BatchEmitter &out, uint32_t max_records, bool &end_of_input) override;
    CallResult process(const sluice_record *records, uint32_t count, BatchEmitter &out,
                       const std::string *marker) override;
    CallResult flush(BatchEmitter &out) override;
    CallResult settle() override { return {}; } // the worker settles after every call
    std::string position() override;
    std::string restore(const std::string &position) override;
    void acknowledged(const std::string &position) override;
    CallResult recover(std::string &marker) override;
    bool sync_markers() override;
    bool isolated() const override { return true; }
    std::string restart() override;
    uint64_t peak_rss_mb() const override;

private:
    IsolatedInstance(const InstanceSetup &setup, const WorkerLimits &limits, PipelineControl &control,
                     StageMetrics &metrics);
    std::string launch(); // spawn + init
    // Sends a command and waits for its reply. `limits`: the call's (only
    // plugin calls have a time limit).
    CallResult exchange(const worker::Header &command, worker::Header &reply, bool limited);
    // Replays the call log of the last reply into `out`.
    CallResult replayed(CallResult r, const worker::Header &reply, BatchEmitter &out, const sluice_record *inputs,
                        uint32_t count);

    InstanceSetup setup_;
    WorkerLimits limits_;
    PipelineControl &control_;
    StageMetrics &metrics_;
    void set_worker(std::shared_ptr<WorkerProcess> worker);
    // Whether [0, bytes) of the worker's output region may be read.
    bool readable(uint64_t bytes) const;

    std::shared_ptr<WorkerProcess> worker_;
    std::mutex exchange_mutex_; // one command at a time (sync_markers comes from another thread)
    std::mutex worker_mutex_;   // guards worker_ itself for acknowledged(), which sends outside exchanges
    InstanceFeatures features_;
    bool started_ = false;
    std::string position_; // the last position pulled to (or restored)
    uint64_t peak_rss_mb_ = 0; // of workers gone
    std::string scratch_;      // encoding buffer, reused
};

} // namespace sluice
