// Drives one plugin stage directly, without a pipeline: create with a
// config, feed records, collect what it emits, rejects and fails.
#pragma once

#include "batch.hpp"
#include "emitter.hpp"
#include "plugin_loader.hpp"

#include <sluice/plugin.h>

#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace sluice::test {

struct Emitted {
    std::vector<std::vector<std::string>> outputs; // payloads per output
    std::vector<Batch> batches;                    // the raw output batches
    std::vector<Failure> failures;
    FailureBatch failure_storage;
    sluice_status status = SLUICE_OK;
    std::string error; // last_error when status != OK
    bool end = false;  // pull: end of input

    const std::vector<std::string> &out(size_t i = 0) const { return outputs.at(i); }
    std::vector<std::string> messages(FailureKind kind) const {
        std::vector<std::string> m;
        for (const auto &f : failures)
            if (f.kind == kind) m.push_back(f.message);
        return m;
    }
};

class StageHarness {
public:
    // Finds the bundled (or `dirs`) plugin and creates one instance.
    // Throws std::runtime_error with the plugin's message when create fails.
    StageHarness(sluice_kind kind, const std::string &name, const std::string &config_json,
                 const std::string &base_dir = ".", std::vector<std::string> dirs = {});
    ~StageHarness();

    // create()'s error message, or nullopt when the config is accepted.
    static std::optional<std::string> create_error(sluice_kind kind, const std::string &name,
                                                   const std::string &config_json);

    void start();
    Emitted process(const std::vector<std::string> &payloads);
    Emitted process(const Batch &batch);
    Emitted pull(uint32_t max_records);
    // Pulls until end of input (or `limit` calls); all outputs concatenated.
    Emitted pull_all(uint32_t batch = 1000, int limit = 100000);
    Emitted flush();
    void stop();

    // sluice.checkpoint/1 (nullopt when the plugin lacks it): the position
    // after the last pull; restore (before start) throws with the message.
    std::optional<std::string> position() const;
    void restore(const std::string &position);
    // sluice.delivery/1 (nullopt when the plugin lacks it).
    std::optional<bool> durable_on_process() const;
    // sluice.settle/1: status and message (error set when not OK); throws
    // when the plugin lacks it.
    Emitted settle();

    std::map<std::string, int64_t> counters() const;
    std::vector<std::string> logs() const;
    const LoadedStage &stage() const { return stage_; }

private:
    Emitted call(const Batch *input, int what, uint32_t max);

    LoadedStage stage_;
    sluice_host host_{};
    void *instance_ = nullptr;
    bool started_ = false;
    mutable std::mutex mutex_;
    std::map<std::string, int64_t> counters_;
    std::vector<std::string> logs_;
    uint64_t next_id_ = 1;
};

// A batch of JSON payloads with ids 1..n.
Batch make_batch(const std::vector<std::string> &payloads);

} // namespace sluice::test
