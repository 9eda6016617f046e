// Drives one plugin stage in a fuzz target without a pipeline: a host table
// whose services do nothing, and the host's own emitter collecting results.
#pragma once

#include "batch.hpp"
#include "emitter.hpp"
#include "quiet_host.hpp"

#include <sluice/plugin.h>

#include <functional>
#include <string>
#include <vector>

// The plugin linked into this fuzz target.
extern "C" const sluice_entry *sluice_plugin_entry(void);

namespace sluice::fuzz {

inline const sluice_host *quiet_host() { return test::quiet_host(true); }

// The stage `kind` of this binary's plugin entry and an instance of it made
// with `config`; no instance when create refuses the config (that is fine:
// bad configs are part of the input).
struct Created {
    const sluice_stage_descriptor *desc = nullptr;
    void *instance = nullptr;
};
inline Created create_stage(sluice_kind kind, const std::string &config, const char *base_dir = ".") {
    const sluice_entry *entry = sluice_plugin_entry();
    for (uint32_t i = 0; i < entry->stage_count; ++i) {
        const sluice_stage_descriptor *d = entry->stages[i];
        if (d->kind != kind) continue;
        char error[512];
        sluice_create_args args{};
        args.struct_size = sizeof args;
        args.worker_count = 1;
        args.host = quiet_host();
        args.stage_id = "fuzz";
        args.config_json = config.c_str();
        args.config_len = config.size();
        args.base_dir = base_dir;
        args.error = error;
        args.error_size = sizeof error;
        void *instance = nullptr;
        if (d->create(&args, &instance) != SLUICE_OK) return {};
        return Created{d, instance};
    }
    return {};
}

// What a stage made of one input batch: its outputs and failures.
using StageCheck = std::function<void(const Batch &in, const std::vector<Batch> &outputs, const FailureBatch &failures)>;

// Runs `records` once through a `kind` stage made with `config`, then
// `check` on what came out.
inline void run_stage(sluice_kind kind, const std::string &config, const std::vector<std::string> &records,
                      const StageCheck &check = {}) {
    Created c = create_stage(kind, config);
    if (!c.instance) return;
    const sluice_stage_descriptor *d = c.desc;
    std::vector<Batch> outputs(16);
    FailureBatch failures;
    BatchEmitter emitter(outputs, failures);
    Batch in;
    for (const std::string &r : records) {
        sluice_record rec{};
        rec.payload = in.storage->arena.copy(r);
        rec.payload_len = r.size();
        rec.id = in.records.size(); // its index, for checks that pair outputs with inputs
        in.records.push_back(rec);
    }
    if (!d->start || d->start(c.instance) == SLUICE_OK) {
        emitter.set_input(&in, 0, uint32_t(in.records.size()));
        if (d->process) d->process(c.instance, in.records.data(), uint32_t(in.records.size()), emitter.raw());
        if (d->stop) d->stop(c.instance);
        if (check) check(in, outputs, failures);
    }
    d->destroy(c.instance);
}

// Splits fuzz input into a first line (a config) and the lines after it.
inline void split_config_and_records(const uint8_t *data, size_t size, std::string &config,
                                     std::vector<std::string> &records) {
    std::string text(reinterpret_cast<const char *>(data), size);
    size_t nl = text.find('\n');
    config = text.substr(0, nl);
    if (nl == std::string::npos) return;
    for (size_t pos = nl + 1; pos <= text.size();) {
        size_t end = text.find('\n', pos);
        if (end == std::string::npos) end = text.size();
        records.push_back(text.substr(pos, end - pos));
        pos = end + 1;
    }
}

} // namespace sluice::fuzz
