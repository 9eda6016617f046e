// Stage: lifecycle, wiring and delivery of results. The plugin calls (with
// retries and supervision) are in stage_calls.cpp, the worker loops in
// stage_loops.cpp.
#include "stage.hpp"

#include "host_services.hpp"
#include "isolated_instance.hpp"
#include "kinds.hpp"
#include "stage_detail.hpp"

#include <boost/asio/post.hpp>
#include <spdlog/spdlog.h>

#include <thread>

namespace sluice {

using namespace stage_detail;


Stage::Stage(StageSpec spec, LoadedStage plugin, PipelineControl &control, std::string base_dir)
    : spec_(std::move(spec)), plugin_(std::move(plugin)), control_(control), base_dir_(std::move(base_dir)),
      metrics_(spec_.threads) {
    config_text_ = boost::json::serialize(spec_.config);
    label_ = crash_reporter::make_label(spec_.id, std::string(kind_name(spec_.kind)).c_str(), spec_.plugin);
    HostServices::fill(host_, *this);
    outputs_.resize(plugin_.output_names.size());
    for (size_t i = 0; i < plugin_.output_names.size(); ++i)
        if (plugin_.output_names[i] == "fail") fail_output_ = int(i);
    epochs_.push_back(PluginEpoch{plugin_.desc && plugin_.desc->version ? plugin_.desc->version : "",
                                  plugin_.library ? plugin_.library->path() : "", std::chrono::system_clock::now()});
}

Stage::~Stage() {
    if (pool_) pool_->join();
    stop_and_destroy();
}

std::string Stage::describe() const {
    return "stage '" + spec_.id + "' (" + std::string(kind_name(spec_.kind)) + " " + spec_.plugin + ")";
}

InstanceSetup Stage::setup_for(const StageSpec &spec, const LoadedStage &plugin, const std::string &config,
                               uint32_t index, uint32_t count) const {
    InstanceSetup s;
    s.desc = plugin.desc;
    s.host = &host_;
    s.library_path = plugin.library ? plugin.library->load_path() : std::string();
    s.library_sha256 = spec.sha256;
    s.check_library_trust = !spec.allow_untrusted_plugin;
    s.stage_id = spec.id;
    s.config_json = config;
    s.base_dir = base_dir_;
    s.worker_index = index;
    s.worker_count = count;
    s.kind = spec.kind;
    // A shared (concurrent) instance cannot be replaced under the other
    // workers, so in process it gets no time limit.
    const bool shared = !spec.isolation.process && (plugin.desc->capabilities & SLUICE_CAP_CONCURRENT);
    s.timeout_ms = shared && spec.threads > 1 ? 0 : spec.timeout_ms;
    s.label = &label_;
    return s;
}

std::unique_ptr<StageInstance> Stage::make_instance(uint32_t index, uint32_t count, std::string &problem) {
    return make_instance(spec_, plugin_, config_text_, index, count, problem);
}

std::unique_ptr<StageInstance> Stage::make_instance(const StageSpec &spec, const LoadedStage &plugin,
                                                    const std::string &config, uint32_t index, uint32_t count,
                                                    std::string &problem) {
    InstanceSetup setup = setup_for(spec, plugin, config, index, count);
    if (!spec.isolation.process) return InProcessInstance::create(setup, abandoned_, problem);
    WorkerLimits limits;
    limits.memory_limit_mb = spec.isolation.memory_limit_mb;
    limits.timeout_ms = spec.timeout_ms;
    return IsolatedInstance::create(setup, limits, control_, metrics_, problem);
}

std::vector<std::unique_ptr<StageInstance>> Stage::make_instances(const StageSpec &spec, const LoadedStage &plugin,
                                                                  const std::string &config, std::string &problem) {
    // In process a concurrent plugin gets one instance shared by the
    // workers; isolated, each worker has a process (and instance) of its own.
    const bool shared = (plugin.desc->capabilities & SLUICE_CAP_CONCURRENT) && !spec.isolation.process;
    const uint32_t count = shared ? 1 : spec.threads;
    std::vector<std::unique_ptr<StageInstance>> out;
    for (uint32_t i = 0; i < count; ++i) {
        auto inst = make_instance(spec, plugin, config, i, count, problem);
        if (!inst) return {};
        out.push_back(std::move(inst));
    }
    return out;
}

std::string Stage::create_instances() {
    std::string problem;
    instances_ = make_instances(spec_, plugin_, config_text_, problem);
    if (instances_.empty()) return problem;
    adopt_features();
    return {};
}

void Stage::adopt_features() {
    const InstanceFeatures &f = instances_[0]->features();
    // Loaders are durable only after flush unless they say otherwise; other
    // stages pass on everything within the call unless they say otherwise.
    durable_on_process_ = f.durable_on_process.value_or(spec_.kind != SLUICE_KIND_LOADER);
    exactly_once_ = spec_.kind == SLUICE_KIND_LOADER && f.exactly_once;
    acks_wait_for_next_call_ = f.settle && !shares_one_instance();
    // Kept across a live replacement (which cannot change threads): the
    // workers' held acknowledgements compare against them.
    if (calls_returned_.empty()) calls_returned_.assign(std::max<uint32_t>(spec_.threads, 1), 0);
    declared_metrics_ = f.metrics;
    for (const auto &m : declared_metrics_.metrics)
        if (m.gauge) metrics_.declare_gauge(m.name);
}

std::string Stage::recover_exactly_once(const std::string &extractor, const std::vector<uint64_t> &delivered,
                                        bool replay_matches) {
    std::string text;
    CallResult r = instances_[0]->recover(text);
    if (!r.ok()) return "cannot recover the destination: " + (r.death ? r.death->what : r.message);
    marker_.emplace(extractor, delivered);
    if (text.empty()) return {}; // nothing stored yet: from here on
    std::string problem;
    std::optional<PullMarker> held = PullMarker::parse(text, problem);
    if (!held) return "the destination's marker: " + problem;
    if (held->extractor() != extractor || held->pulls().size() != delivered.size())
        return "the destination holds records of another pipeline or layout (its marker: " + text +
               "); give this loader another destination or remove its marker";
    // The state may count later pulls than the marker: pulls that brought
    // this destination nothing (an empty read, records that went elsewhere).
    for (size_t w = 0; w < delivered.size(); ++w) marker_->add(uint32_t(w), held->pulls()[w]);
    if (!replay_matches) {
        spdlog::warn("[{}] the extractor's batch_size changed since the destination was written: the pulls read "
                     "again may not be the ones it holds, so none is skipped (some records may be written twice)",
                     spec_.id);
        return {};
    }
    already_held_ = std::move(held);
    return {};
}

bool Stage::sync_markers() {
    if (!marker_) return true;
    return instances_[0]->sync_markers();
}

std::vector<std::string> Stage::preflight() const {
    std::vector<std::string> out;
    if (instances_.empty()) return out;
    std::string text = instances_[0]->preflight();
    size_t start = 0;
    while (start < text.size()) {
        size_t nl = text.find('\n', start);
        std::string line = text.substr(start, nl == std::string::npos ? std::string::npos : nl - start);
        if (!line.empty()) out.push_back(line);
        if (nl == std::string::npos) break;
        start = nl + 1;
    }
    return out;
}

std::string Stage::declared_resources() const {
    if (instances_.empty()) return {};
    return instances_[0]->resources();
}

const AckToken *Stage::marked_pull(const Batch &batch) const {
    if (batch.acks.size() != 1) return nullptr;
    const AckToken &t = *batch.acks[0];
    return t.tracker().origin().stage == marker_->extractor() ? &t : nullptr;
}

bool Stage::held_already(const AckToken &pull) const {
    return already_held_ && already_held_->holds(pull.tracker().origin().worker, pull.pull());
}

bool Stage::can_resume() const {
    if (spec_.kind != SLUICE_KIND_EXTRACTOR || instances_.empty()) return false;
    if (shares_one_instance()) return false;
    for (const auto &inst : instances_)
        if (!inst->features().checkpoint) return false;
    return true;
}

std::string Stage::restore_and_track(const std::vector<std::string> &positions, const std::vector<uint64_t> &pulls) {
    trackers_.clear();
    for (size_t i = 0; i < instances_.size(); ++i) {
        std::optional<std::string> restored;
        if (i < positions.size() && !positions[i].empty()) {
            const std::string &p = positions[i];
            std::string problem = instances_[i]->restore(p);
            if (!problem.empty()) return "cannot resume from the saved position " + p + ": " + problem;
            restored = p;
        }
        AckTracker::Origin origin{spec_.id, uint32_t(i), i < pulls.size() ? pulls[i] : 0};
        auto tracker = std::make_shared<AckTracker>(control_, std::move(restored), std::move(origin));
        if (spec_.confirm_delivery && instances_[i]->features().acknowledged) {
            StageInstance *inst = instances_[i].get();
            tracker->on_commit([inst](const std::string &position) { inst->acknowledged(position); });
        }
        trackers_.push_back(std::move(tracker));
    }
    return {};
}

bool Stage::wants_acknowledgements() const {
    if (!can_resume()) return false;
    for (const auto &inst : instances_)
        if (!inst->features().acknowledged) return false;
    return true;
}

std::string Stage::resolve_config_outputs() {
    if (!(plugin_.desc->capabilities & SLUICE_CAP_CONFIG_OUTPUTS)) return {};
    if (instances_.empty()) return "no instance to ask for its outputs";
    std::string problem;
    std::vector<std::string> names = instances_[0]->config_outputs(problem);
    if (!problem.empty()) return problem;
    plugin_.output_names = std::move(names);
    outputs_.assign(plugin_.output_names.size(), {});
    fail_output_ = -1;
    for (size_t i = 0; i < plugin_.output_names.size(); ++i)
        if (plugin_.output_names[i] == "fail") fail_output_ = int(i);
    return {};
}

std::string Stage::start_instances() {
    for (auto &inst : instances_) {
        std::string problem = inst->start();
        if (!problem.empty()) return problem;
    }
    return {};
}

void Stage::stop_and_destroy() {
    for (auto &inst : instances_) {
        inst->stop();
        metrics_.worker_peak_rss(inst->peak_rss_mb());
    }
    instances_.clear();
}

void Stage::connect(uint32_t output, std::shared_ptr<BatchQueue> queue) {
    outputs_.at(output).push_back(std::move(queue));
}

void Stage::launch() {
    const uint32_t workers = uint32_t(instances_.size() == 1 ? spec_.threads : instances_.size());
    held_.assign(instances_.size(), {});
    metrics_.set_output_count(output_count());
    running_ = workers;
    draining_ = workers;
    metrics_.mark_started();
    pool_ = std::make_unique<boost::asio::thread_pool>(workers);
    for (uint32_t w = 0; w < workers; ++w) {
        boost::asio::post(*pool_, [this, w] {
            if (spec_.kind == SLUICE_KIND_EXTRACTOR) run_extractor(w);
            else run_processor(w);
            worker_finished();
        });
    }
}

void Stage::join() {
    if (pool_) pool_->join();
}

void Stage::fatal(const std::string &what) {
    std::string message = describe() + ": " + what;
    spdlog::error("{}", message);
    control_.abort(message);
}

void Stage::worker_finished() {
    if (running_.fetch_sub(1) != 1) return;
    metrics_.mark_finished();
    // The last worker out closes the stage's outputs: downstream stages see
    // end of input once they have drained them.
    for (auto &queues : outputs_)
        for (auto &q : queues) q->producer_done();
    if (error_path_.dead_letter()) error_path_.dead_letter()->producer_done();
}

bool Stage::wait_for_abandoned_calls(std::chrono::milliseconds limit) {
    auto deadline = Clock::now() + limit;
    while (abandoned_->load() > 0) {
        if (Clock::now() > deadline) return false;
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return true;
}

bool Stage::deliver(std::vector<Batch> &outputs, FailureBatch &failures, WorkerCounters &c, uint64_t input_count,
                    const std::vector<AckRef> &acks) {
    uint64_t rejected = 0, failed = 0;
    for (const auto &f : failures.items) (f.kind == FailureKind::rejected ? rejected : failed)++;
    // Rejected records go to the "fail" output (with the reason attached as
    // attribute "reject_reason") when something reads it.
    if (fail_output_ >= 0 && rejected && !outputs_[size_t(fail_output_)].empty()) {
        Batch &fb = outputs[size_t(fail_output_)];
        fb.keep(failures.storage);
        for (const auto &f : failures.items) {
            if (f.kind != FailureKind::rejected) continue;
            sluice_record r = f.record;
            std::vector<sluice_attr> attrs(r.attrs, r.attrs + r.attr_count);
            attrs.push_back(sluice_attr{"reject_reason", 13, f.message.data(), f.message.size()});
            r.attrs = copy_attrs(fb.storage->arena, attrs.data(), uint32_t(attrs.size()));
            r.attr_count = uint32_t(attrs.size());
            fb.records.push_back(r);
        }
    }
    for (size_t o = 0; o < outputs.size(); ++o) {
        Batch &b = outputs[o];
        auto &queues = outputs_[o];
        metrics_.output_add(o, b.records.size());
        if (tap_.active() && !b.records.empty()) tap_.offer(o, b.records.data(), b.records.size());
        if (queues.empty()) {
            if (int(o) != fail_output_) c.add(c.dropped, b.records.size());
            continue;
        }
        if (int(o) != fail_output_) c.add(c.out, b.records.size());
        // Sequenced batches travel even when empty (ordered stages count on
        // every number arriving); empty flush-time batches need not.
        if (b.seq == BatchQueue::kTailSeq && b.records.empty()) continue;
        for (size_t q = 0; q < queues.size(); ++q) {
            bool last = q + 1 == queues.size();
            if (!queues[q]->push(last ? std::move(b) : Batch(b))) return false;
        }
    }
    // A batch that stayed behind (an output nothing reads) must not hold its
    // acknowledgements until the worker's next batch: a quiet real-time
    // source would wait that long to hear its records are delivered.
    for (auto &b : outputs) b.acks.clear();
    // A loader's output is what it accepted: everything it did not reject
    // or fail.
    if (spec_.kind == SLUICE_KIND_LOADER && input_count >= rejected + failed)
        c.add(c.out, input_count - rejected - failed);
    c.add(c.rejected, rejected);
    c.add(c.errors, failed);
    if (!failures.items.empty() && !error_path_.route(failures, c, acks)) return false;
    return !control_.aborted();
}

} // namespace sluice
