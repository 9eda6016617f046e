// Stage: taking a new config or plugin library while running (live reload
// and plugin swap). The new instances are made first; then, between two
// batches, the old ones are flushed (what they emit and the
// acknowledgements they held go on) and stopped, and the new ones started.
#include "stage.hpp"

#include "kinds.hpp"
#include "stage_detail.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <thread>

namespace sluice {

using namespace stage_detail;

namespace {

std::string names(const std::vector<std::string> &list) {
    std::string t;
    for (const auto &n : list) t += (t.empty() ? "" : ", ") + n;
    return t;
}

} // namespace

void Stage::wait_while_swap_pending() {
    if (!swap_pending_.load(std::memory_order_acquire)) return;
    std::unique_lock lock(swap_gate_mutex_);
    swap_gate_.wait(lock, [&] { return !swap_pending_.load(std::memory_order_acquire); });
}

std::string restart_only_change(const StageSpec &a, const StageSpec &b) {
    if (a.kind != b.kind) return "its kind";
    if (a.threads != b.threads) return "threads";
    if (a.queue_capacity != b.queue_capacity) return "queue_capacity";
    if (a.ordered != b.ordered) return "ordered";
    if (a.on_error.then != b.on_error.then || a.on_error.dead_letter != b.on_error.dead_letter ||
        a.on_error.max_attempts != b.on_error.max_attempts || a.on_error.backoff != b.on_error.backoff ||
        a.on_error.max_backoff != b.on_error.max_backoff)
        return "on_error";
    if (a.isolation.process != b.isolation.process || a.isolation.memory_limit_mb != b.isolation.memory_limit_mb ||
        a.isolation.max_restarts != b.isolation.max_restarts)
        return "its isolation";
    return {};
}

std::string Stage::replacement_refusal(const StageSpec &spec, const Stage &candidate) const {
    const std::string restart = "; that needs a restart";
    if (spec_.kind == SLUICE_KIND_EXTRACTOR) {
        // New instances go on from the running ones' read positions.
        if (!can_resume() || !candidate.can_resume())
            return "extractor '" + spec_.plugin + "' cannot hand its read position to new instances (no "
                   SLUICE_EXT_CHECKPOINT ", or one instance shared by its workers)" + restart;
        if (spec.plugin != spec_.plugin)
            return "another plugin would not understand the read position of '" + spec_.plugin + "'" + restart;
        // Its clients (or its source) wait for acknowledgements the running
        // instances give: new ones could not answer them.
        if (wants_acknowledgements())
            return "extractor '" + spec_.plugin + "' confirms delivery to its source through the running instances "
                   "(" SLUICE_EXT_ACKNOWLEDGED ")" + restart;
    }
    if (std::string fixed = restart_only_change(spec_, spec); !fixed.empty()) return fixed + " changed" + restart;
    if (recovery_) return "it is running isolated to get past the record that crashed the last run" + restart;
    if (marker_)
        return "it delivers exactly once (its destination's markers belong to the running instance)" + restart;
    if (spec_.kind == SLUICE_KIND_LOADER && (!durable_on_process_ || !candidate.durable_on_process_))
        return "loader '" + spec_.plugin + "' makes records durable only when the run ends, so new instances "
               "would replace what the running one holds (a file loader: set \"append\": true)" + restart;
    if (candidate.plugin_.output_names != plugin_.output_names)
        return "the new plugin's outputs (" + names(candidate.plugin_.output_names) +
               ") are not the running one's (" + names(plugin_.output_names) + ")" + restart;
    return {};
}

std::string Stage::replace_extractor(const StageSpec &spec, const LoadedStage &plugin, std::shared_mutex &shape) {
    const std::string config = boost::json::serialize(spec.config);
    std::string problem;
    auto fresh = make_instances(spec, plugin, config, problem);
    if (fresh.empty()) return "the new instances could not be created: " + problem;
    if (fresh.size() != instances_.size()) return "the new plugin shares one instance between workers";
    // Held between two pulls: the read positions are final.
    const bool paused_here = !pause_requested_.load();
    if (paused_here) pause_extraction(true);
    const auto deadline = Clock::now() + std::chrono::seconds(30);
    while (!extraction_paused() && Clock::now() < deadline && !control_.aborted())
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
    auto resume = [&] {
        if (paused_here) pause_extraction(false);
    };
    if (!extraction_paused()) {
        resume();
        return "the extractor did not pause within 30 s";
    }
    for (size_t i = 0; i < fresh.size(); ++i) {
        const std::string position = instances_[i]->position();
        if (position.empty()) continue;
        if (std::string p = fresh[i]->restore(position); !p.empty()) {
            resume();
            return "the new instances cannot go on from the running one's position " + position + ": " + p;
        }
    }
    // The new ones start before the old ones stop: a failure leaves the old
    // ones reading.
    for (size_t i = 0; i < fresh.size(); ++i) {
        if (problem = fresh[i]->start(); problem.empty()) continue;
        for (size_t k = 0; k < i; ++k) fresh[k]->stop();
        resume();
        return "the new instances did not start: " + problem;
    }
    for (auto &inst : instances_) {
        inst->stop();
        metrics_.worker_peak_rss(inst->peak_rss_mb());
    }
    {
        std::unique_lock readers_wait(shape);
        take(spec, plugin, config, std::move(fresh));
        // Acknowledgements of pulls the old instances made reach the new
        // ones (the same plugin: the same positions).
        for (size_t i = 0; i < trackers_.size() && i < instances_.size(); ++i) {
            StageInstance *inst = instances_[i].get();
            if (inst->features().acknowledged)
                trackers_[i]->on_commit([inst](const std::string &position) { inst->acknowledged(position); });
            else
                trackers_[i]->on_commit(nullptr);
        }
    }
    resume();
    return {};
}

std::string Stage::replace_with(const StageSpec &spec, const LoadedStage &plugin, std::shared_mutex &shape) {
    if (spec_.kind == SLUICE_KIND_EXTRACTOR) return replace_extractor(spec, plugin, shape);
    const std::string config = boost::json::serialize(spec.config);
    std::string problem;
    auto fresh = make_instances(spec, plugin, config, problem);
    if (fresh.empty()) return "the new instances could not be created: " + problem;

    // Between two batches: workers finish the one they hold, then wait.
    swap_pending_.store(true, std::memory_order_release);
    std::unique_lock exclusive(swap_mutex_);
    auto reopen_gate = [&] {
        {
            std::lock_guard gate(swap_gate_mutex_);
            swap_pending_.store(false, std::memory_order_release);
        }
        swap_gate_.notify_all();
    };

    if (inputs_ended_.load() > 0) {
        reopen_gate();
        return "its input has ended (the run is finishing)";
    }
    // The old instances hand on what they hold, then stop.
    std::vector<Batch> outputs;
    FailureBatch failures;
    BatchEmitter emitter(outputs, failures);
    for (uint32_t i = 0; i < instances_.size(); ++i) {
        if (!flush_one(i, outputs, failures, emitter)) {
            reopen_gate();
            return "the running instances could not be flushed (the run is failing)";
        }
    }
    for (auto &inst : instances_) {
        inst->stop();
        metrics_.worker_peak_rss(inst->peak_rss_mb());
    }
    for (size_t i = 0; i < fresh.size(); ++i) {
        problem = fresh[i]->start();
        if (problem.empty()) continue;
        for (size_t k = 0; k < i; ++k) fresh[k]->stop();
        fresh.clear();
        // Back to the old config and plugin, in new instances of them.
        std::string again;
        auto old = make_instances(spec_, plugin_, config_text_, again);
        for (auto &inst : old)
            if (again.empty()) again = inst->start();
        if (old.empty() || !again.empty()) {
            reopen_gate();
            fatal("the new instances did not start (" + problem + ") and the old ones could not be started again: " +
                  again);
            return "the new instances did not start: " + problem;
        }
        instances_ = std::move(old);
        held_.assign(instances_.size(), {});
        reopen_gate();
        return "the new instances did not start, the old config runs again: " + problem;
    }
    {
        std::unique_lock readers_wait(shape);
        take(spec, plugin, config, std::move(fresh));
    }
    reopen_gate();
    return {};
}

void Stage::pause_extraction(bool on) {
    {
        std::lock_guard lock(pause_mutex_);
        pause_requested_.store(on, std::memory_order_release);
    }
    pause_cv_.notify_all();
}

void Stage::hold_while_paused() {
    std::unique_lock lock(pause_mutex_);
    ++paused_;
    pause_cv_.notify_all();
    // A stop asked for meanwhile ends the wait too (checked every 50 ms).
    while (pause_requested_.load(std::memory_order_acquire) && !control_.stop_requested())
        pause_cv_.wait_for(lock, std::chrono::milliseconds(50));
    --paused_;
}

bool Stage::extraction_paused() const { return paused_.load() >= running_.load(); }

uint64_t Stage::next_sequence() const { return window_ ? window_->next() : next_seq_.load(); }

void Stage::disconnect(uint32_t output, const std::shared_ptr<BatchQueue> &queue) {
    auto &list = outputs_.at(output);
    list.erase(std::remove(list.begin(), list.end(), queue), list.end());
}

void Stage::take(const StageSpec &spec, const LoadedStage &plugin, const std::string &config,
                 std::vector<std::unique_ptr<StageInstance>> fresh) {
    spec_ = spec;
    plugin_ = plugin;
    config_text_ = config;
    label_ = crash_reporter::make_label(spec_.id, std::string(kind_name(spec_.kind)).c_str(), spec_.plugin);
    instances_ = std::move(fresh); // the old ones, stopped, are destroyed
    held_.assign(instances_.size(), {});
    adopt_features();
    std::lock_guard history(epochs_mutex_);
    epochs_.push_back(PluginEpoch{plugin_.desc->version ? plugin_.desc->version : "",
                                  plugin_.library ? plugin_.library->path() : "", std::chrono::system_clock::now()});
}

std::vector<Stage::PluginEpoch> Stage::plugin_history() const {
    std::lock_guard lock(epochs_mutex_);
    return epochs_;
}

} // namespace sluice
