#include "stage_harness.hpp"

#include <stdexcept>

namespace sluice::test {

namespace {
StageHarness &self(const sluice_host *h) { return *static_cast<StageHarness *>(h->host_data); }
} // namespace

Batch make_batch(const std::vector<std::string> &payloads) {
    Batch b;
    uint64_t id = 1;
    for (const auto &p : payloads) {
        sluice_record r{};
        r.id = id++;
        r.payload = b.storage->arena.copy(p);
        r.payload_len = p.size();
        b.records.push_back(r);
    }
    return b;
}

StageHarness::StageHarness(sluice_kind kind, const std::string &name, const std::string &config_json,
                           const std::string &base_dir, std::vector<std::string> dirs) {
    PluginRegistry registry(dirs.empty() ? plugin_search_dirs({}) : dirs);
    stage_ = registry.find(kind, name, std::nullopt);
    host_.struct_size = sizeof host_;
    host_.abi_major = SLUICE_ABI_MAJOR;
    host_.abi_minor = SLUICE_ABI_MINOR;
    host_.host_data = this;
    host_.log = [](const sluice_host *h, sluice_log_level, const char *m, size_t n) {
        std::lock_guard lock(self(h).mutex_);
        self(h).logs_.emplace_back(m, n);
    };
    host_.log_enabled = [](const sluice_host *, sluice_log_level) -> int32_t { return 1; };
    host_.counter_add = [](const sluice_host *h, const char *name, int64_t d) {
        std::lock_guard lock(self(h).mutex_);
        self(h).counters_[name] += d;
    };
    host_.stop_requested = [](const sluice_host *) -> int32_t { return 0; };
    host_.get_extension = [](const sluice_host *, const char *) -> const void * { return nullptr; };

    char error[1024] = {0};
    sluice_create_args args{};
    args.struct_size = sizeof args;
    args.worker_index = 0;
    args.worker_count = 1;
    args.host = &host_;
    args.stage_id = "test";
    args.config_json = config_json.c_str();
    args.config_len = config_json.size();
    args.base_dir = base_dir.c_str();
    args.error = error;
    args.error_size = sizeof error;
    if (stage_.desc->create(&args, &instance_) != SLUICE_OK) throw std::runtime_error(error);
    if (stage_.desc->capabilities & SLUICE_CAP_CONFIG_OUTPUTS) {
        auto *ext = static_cast<const sluice_outputs_ext *>(stage_.desc->get_extension(instance_, SLUICE_EXT_OUTPUTS));
        if (!ext) throw std::runtime_error("no " SLUICE_EXT_OUTPUTS " extension");
        stage_.output_names.clear();
        for (uint32_t i = 0; i < ext->count(instance_); ++i) stage_.output_names.emplace_back(ext->name(instance_, i));
    }
}

StageHarness::~StageHarness() {
    stop();
    stage_.desc->destroy(instance_);
}

std::optional<std::string> StageHarness::create_error(sluice_kind kind, const std::string &name,
                                                      const std::string &config_json) {
    try {
        StageHarness h(kind, name, config_json);
        return std::nullopt;
    } catch (const std::runtime_error &e) {
        return std::string(e.what());
    }
}

void StageHarness::start() {
    if (stage_.desc->start && stage_.desc->start(instance_) != SLUICE_OK)
        throw std::runtime_error(stage_.desc->last_error(instance_));
    started_ = true;
}

std::optional<std::string> StageHarness::position() const {
    auto *ext = stage_.desc->get_extension
                    ? static_cast<const sluice_checkpoint_ext *>(stage_.desc->get_extension(instance_, SLUICE_EXT_CHECKPOINT))
                    : nullptr;
    if (!ext) return std::nullopt;
    const char *p = ext->position(instance_);
    return std::string(p ? p : "");
}

void StageHarness::restore(const std::string &position) {
    auto *ext = stage_.desc->get_extension
                    ? static_cast<const sluice_checkpoint_ext *>(stage_.desc->get_extension(instance_, SLUICE_EXT_CHECKPOINT))
                    : nullptr;
    if (!ext) throw std::runtime_error("the plugin has no " SLUICE_EXT_CHECKPOINT);
    if (ext->restore(instance_, position.data(), position.size()) != SLUICE_OK)
        throw std::runtime_error(stage_.desc->last_error(instance_));
}

std::optional<bool> StageHarness::durable_on_process() const {
    auto *ext = stage_.desc->get_extension
                    ? static_cast<const sluice_delivery_ext *>(stage_.desc->get_extension(instance_, SLUICE_EXT_DELIVERY))
                    : nullptr;
    if (!ext) return std::nullopt;
    return ext->durable_on_process(instance_) != 0;
}

Emitted StageHarness::settle() {
    auto *ext = stage_.desc->get_extension
                    ? static_cast<const sluice_settle_ext *>(stage_.desc->get_extension(instance_, SLUICE_EXT_SETTLE))
                    : nullptr;
    if (!ext) throw std::runtime_error("the plugin has no " SLUICE_EXT_SETTLE);
    Emitted e;
    e.status = ext->settle(instance_);
    if (e.status != SLUICE_OK) e.error = stage_.desc->last_error(instance_);
    return e;
}

void StageHarness::stop() {
    if (started_ && stage_.desc->stop) stage_.desc->stop(instance_);
    started_ = false;
}

Emitted StageHarness::call(const Batch *input, int what, uint32_t max) {
    Emitted e;
    e.batches.resize(stage_.output_names.size());
    BatchEmitter emitter(e.batches, e.failure_storage);
    emitter.set_input(input, 0, input ? uint32_t(input->size()) : 0);
    int32_t end = 0;
    if (what == 0)
        e.status = stage_.desc->process(instance_, input->records.data(), uint32_t(input->size()), emitter.raw());
    else if (what == 1)
        e.status = stage_.desc->pull(instance_, emitter.raw(), max, &end);
    else
        e.status = stage_.desc->flush ? stage_.desc->flush(instance_, emitter.raw()) : SLUICE_OK;
    e.end = end != 0;
    if (e.status != SLUICE_OK && stage_.desc->last_error) e.error = stage_.desc->last_error(instance_);
    for (auto &b : e.batches) {
        e.outputs.emplace_back();
        for (auto &r : b.records) {
            if (!r.id) r.id = next_id_++;
            e.outputs.back().emplace_back(r.payload, r.payload_len);
        }
    }
    e.failures = e.failure_storage.items;
    return e;
}

Emitted StageHarness::process(const std::vector<std::string> &payloads) {
    Batch b = make_batch(payloads);
    return call(&b, 0, 0);
}

Emitted StageHarness::process(const Batch &batch) { return call(&batch, 0, 0); }

Emitted StageHarness::pull(uint32_t max_records) { return call(nullptr, 1, max_records); }

Emitted StageHarness::pull_all(uint32_t batch, int limit) {
    Emitted all;
    all.outputs.resize(stage_.output_names.size());
    for (int i = 0; i < limit; ++i) {
        Emitted e = pull(batch);
        for (size_t o = 0; o < e.outputs.size(); ++o)
            all.outputs[o].insert(all.outputs[o].end(), e.outputs[o].begin(), e.outputs[o].end());
        for (auto &b : e.batches) all.batches.push_back(std::move(b));
        all.failures.insert(all.failures.end(), e.failures.begin(), e.failures.end());
        all.failure_storage.storage->parents.push_back(e.failure_storage.storage);
        all.status = e.status;
        all.error = e.error;
        if (e.status != SLUICE_OK || e.end) {
            all.end = e.end;
            break;
        }
    }
    return all;
}

Emitted StageHarness::flush() { return call(nullptr, 2, 0); }

std::map<std::string, int64_t> StageHarness::counters() const {
    std::lock_guard lock(mutex_);
    return counters_;
}

std::vector<std::string> StageHarness::logs() const {
    std::lock_guard lock(mutex_);
    return logs_;
}

} // namespace sluice::test
