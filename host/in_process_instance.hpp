// A stage instance in the host's own process: the plugin's functions called
// directly on the calling thread. With a time limit a call runs on a thread
// of its own into a call log; one that overruns is abandoned (a thread
// cannot be killed), the instance is replaced, and the abandoned one is
// destroyed when its call returns.
#pragma once

#include "crash_reporter.hpp"
#include "stage_instance.hpp"

#include <atomic>
#include <memory>
#include <string>

namespace sluice {

struct InstanceSetup {
    const sluice_stage_descriptor *desc = nullptr;
    const sluice_host *host = nullptr; // valid until after destroy
    std::string library_path;          // for a worker process to load
    std::string library_sha256;        // what the worker checks it against ("" when not pinned)
    bool check_library_trust = true;   // the worker refuses a file others could write
    std::string stage_id, config_json, base_dir;
    uint32_t worker_index = 0, worker_count = 1;
    sluice_kind kind = 0;
    uint32_t timeout_ms = 0; // 0: none
    const crash_reporter::Label *label = nullptr;
};

class InProcessInstance final : public StageInstance {
public:
    // Creates the instance (sluice_stage_descriptor.create). Null with
    // `problem` set when the plugin refuses its config.
    // `abandoned`: counts calls abandoned after timeout_ms still running.
    static std::unique_ptr<InProcessInstance> create(const InstanceSetup &setup,
                                                     std::shared_ptr<std::atomic<int>> abandoned,
                                                     std::string &problem);
    ~InProcessInstance() override;

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
    CallResult settle() override;
    std::string position() override;
    std::string restore(const std::string &position) override;
    void acknowledged(const std::string &position) override;
    CallResult recover(std::string &marker) override;
    bool sync_markers() override;
    bool isolated() const override { return false; }
    std::string restart() override { return "an instance in the host's process cannot be restarted"; }
    uint64_t peak_rss_mb() const override { return 0; }

private:
    InProcessInstance(const InstanceSetup &setup, std::shared_ptr<std::atomic<int>> abandoned);
    std::string make(); // create + extension lookup
    std::string message() const;
    CallResult process_with_time_limit(const sluice_record *records, uint32_t count, BatchEmitter &out,
                                       const std::string *marker);

    InstanceSetup setup_;
    std::shared_ptr<std::atomic<int>> abandoned_;
    void *handle_ = nullptr;
    bool created_ = false, started_ = false;
    InstanceFeatures features_;
    const sluice_checkpoint_ext *checkpoint_ = nullptr;
    const sluice_acknowledged_ext *acknowledged_ = nullptr;
    const sluice_exactly_once_ext *exactly_once_ = nullptr;
    const sluice_settle_ext *settle_ = nullptr;
};

} // namespace sluice
