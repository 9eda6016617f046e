#include "stage.hpp"

#include "host_services.hpp"
#include "environment_retry.hpp"
#include "error_policy.hpp"
#include "memory_budget.hpp"
#include "kinds.hpp"

#include <sluice/dead_letter.hpp>

#include <boost/asio/post.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <random>
#include <thread>

namespace sluice {

namespace {

using Clock = std::chrono::steady_clock;

uint64_t elapsed_ns(Clock::time_point since) {
    return uint64_t(std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - since).count());
}

// Backoff between failed pulls (doubled each time, with jitter).
constexpr std::chrono::milliseconds kRetryBase{50};
constexpr std::chrono::milliseconds kRetryMax{2000};
// An extractor whose pull fails this many times in a row stops the pipeline.
constexpr int kMaxConsecutivePullErrors = 5;
// Failures logged at warn level per stage; the rest go to debug (all are
// counted in the report).
constexpr uint64_t kFailuresLoggedPerStage = 20;

std::chrono::milliseconds backoff(int attempt) {
    thread_local std::minstd_rand rng{std::random_device{}()};
    auto d = kRetryBase * (1 << std::min(attempt, 10));
    if (d > kRetryMax) d = kRetryMax;
    std::uniform_int_distribution<int64_t> jitter(0, d.count() / 2);
    return d + std::chrono::milliseconds(jitter(rng));
}

std::string_view attr_value(const sluice_record &r, std::string_view key) {
    for (uint32_t i = 0; i < r.attr_count; ++i)
        if (std::string_view(r.attrs[i].key, r.attrs[i].key_len) == key)
            return {r.attrs[i].value, r.attrs[i].value_len};
    return {};
}

// Output sizes before a call, to undo what a failed call emitted.
struct Mark {
    std::vector<size_t> outputs;
    size_t failures = 0;
};

Mark mark(const std::vector<Batch> &outputs, const FailureBatch &failures) {
    Mark m;
    for (const auto &b : outputs) m.outputs.push_back(b.records.size());
    m.failures = failures.items.size();
    return m;
}

void rollback(std::vector<Batch> &outputs, FailureBatch &failures, const Mark &m) {
    for (size_t i = 0; i < outputs.size(); ++i) outputs[i].records.resize(m.outputs[i]);
    failures.items.resize(m.failures);
}

} // namespace

Stage::Stage(StageSpec spec, LoadedStage plugin, PipelineControl &control, std::string base_dir)
    : spec_(std::move(spec)), plugin_(std::move(plugin)), control_(control), base_dir_(std::move(base_dir)),
      metrics_(spec_.threads) {
    config_text_ = boost::json::serialize(spec_.config);
    HostServices::fill(host_, *this);
    outputs_.resize(plugin_.output_names.size());
    for (size_t i = 0; i < plugin_.output_names.size(); ++i)
        if (plugin_.output_names[i] == "fail") fail_output_ = int(i);
}

Stage::~Stage() {
    if (pool_) pool_->join();
    stop_and_destroy();
}

std::string Stage::plugin_message(const Instance &inst) const {
    const char *m = plugin_.desc->last_error ? plugin_.desc->last_error(inst.handle) : nullptr;
    return m && *m ? std::string(m) : std::string("(the plugin gave no message)");
}

std::string Stage::create_instance(uint32_t index, uint32_t count, Instance &inst) {
    char error[1024] = {0};
    sluice_create_args args{};
    args.struct_size = sizeof args;
    args.worker_index = index;
    args.worker_count = count;
    args.host = &host_;
    args.stage_id = spec_.id.c_str();
    args.config_json = config_text_.c_str();
    args.config_len = config_text_.size();
    args.base_dir = base_dir_.c_str();
    args.error = error;
    args.error_size = sizeof error;
    void *handle = nullptr;
    if (plugin_.desc->create(&args, &handle) != SLUICE_OK)
        return error[0] ? std::string(error) : std::string("create failed (the plugin gave no message)");
    inst.handle = handle;
    inst.created = true;
    inst.started = false;
    const void *ext = plugin_.desc->get_extension ? plugin_.desc->get_extension(handle, SLUICE_EXT_CHECKPOINT) : nullptr;
    const auto *cp = static_cast<const sluice_checkpoint_ext *>(ext);
    inst.checkpoint = cp && cp->struct_size >= sizeof(sluice_checkpoint_ext) && cp->position && cp->restore ? cp : nullptr;
    ext = plugin_.desc->get_extension ? plugin_.desc->get_extension(handle, SLUICE_EXT_ACKNOWLEDGED) : nullptr;
    const auto *ack = static_cast<const sluice_acknowledged_ext *>(ext);
    inst.acknowledged = ack && ack->struct_size >= sizeof(sluice_acknowledged_ext) && ack->acknowledged ? ack : nullptr;
    return {};
}

std::string Stage::create_instances() {
    const bool shared = plugin_.desc->capabilities & SLUICE_CAP_CONCURRENT;
    const uint32_t count = shared ? 1 : spec_.threads;
    instances_.resize(count);
    for (uint32_t i = 0; i < count; ++i) {
        std::string problem = create_instance(i, count, instances_[i]);
        if (!problem.empty()) {
            instances_.resize(i);
            return problem;
        }
    }
    // Loaders are durable only after flush unless they say otherwise; other
    // stages pass on everything within the call unless they say otherwise.
    durable_on_process_ = spec_.kind != SLUICE_KIND_LOADER;
    const void *ext = plugin_.desc->get_extension && !instances_.empty()
                          ? plugin_.desc->get_extension(instances_[0].handle, SLUICE_EXT_DELIVERY)
                          : nullptr;
    const auto *delivery = static_cast<const sluice_delivery_ext *>(ext);
    if (delivery && delivery->struct_size >= sizeof(sluice_delivery_ext) && delivery->durable_on_process)
        durable_on_process_ = delivery->durable_on_process(instances_[0].handle) != 0;
    ext = plugin_.desc->get_extension && !instances_.empty()
              ? plugin_.desc->get_extension(instances_[0].handle, SLUICE_EXT_EXACTLY_ONCE)
              : nullptr;
    const auto *once = static_cast<const sluice_exactly_once_ext *>(ext);
    if (spec_.kind == SLUICE_KIND_LOADER && once && once->struct_size >= sizeof(sluice_exactly_once_ext) &&
        once->recover && once->process_marked)
        exactly_once_ext_ = once;
    return {};
}

std::string Stage::recover_exactly_once(const std::string &extractor, const std::vector<uint64_t> &delivered,
                                        bool replay_matches) {
    const char *text = nullptr;
    if (exactly_once_ext_->recover(instances_[0].handle, &text) != SLUICE_OK)
        return "cannot recover the destination: " + plugin_message(instances_[0]);
    marker_.emplace(extractor, delivered);
    if (!text || !*text) return {}; // nothing stored yet: from here on
    std::string problem;
    std::optional<PullMarker> held = PullMarker::parse(text, problem);
    if (!held) return "the destination's marker: " + problem;
    if (held->extractor() != extractor || held->pulls().size() != delivered.size())
        return "the destination holds records of another pipeline or layout (its marker: " + std::string(text) +
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
    if (!marker_ || !exactly_once_ext_->sync_markers) return true;
    return exactly_once_ext_->sync_markers(instances_[0].handle) == SLUICE_OK;
}

std::string Stage::declared_resources() const {
    if (instances_.empty() || !plugin_.desc->get_extension) return {};
    const auto *ext = static_cast<const sluice_resources_ext *>(
        plugin_.desc->get_extension(instances_[0].handle, SLUICE_EXT_RESOURCES));
    if (!ext || ext->struct_size < sizeof(sluice_resources_ext) || !ext->resources) return {};
    const char *json = ext->resources(instances_[0].handle);
    return json ? std::string(json) : std::string();
}

const AckToken *Stage::marked_pull(const Batch &batch) const {
    if (batch.acks.size() != 1) return nullptr;
    const AckToken &t = *batch.acks[0];
    return t.tracker().origin().stage == marker_->extractor() ? &t : nullptr;
}

bool Stage::can_resume() const {
    if (spec_.kind != SLUICE_KIND_EXTRACTOR || instances_.empty()) return false;
    if (instances_.size() == 1 && spec_.threads > 1) return false; // one instance shared by workers
    for (const Instance &inst : instances_)
        if (!inst.checkpoint) return false;
    return true;
}

std::string Stage::restore_and_track(const std::vector<std::string> &positions, const std::vector<uint64_t> &pulls) {
    trackers_.clear();
    for (size_t i = 0; i < instances_.size(); ++i) {
        std::optional<std::string> restored;
        if (i < positions.size() && !positions[i].empty()) {
            const std::string &p = positions[i];
            if (instances_[i].checkpoint->restore(instances_[i].handle, p.data(), p.size()) != SLUICE_OK)
                return "cannot resume from the saved position " + p + ": " + plugin_message(instances_[i]);
            restored = p;
        }
        AckTracker::Origin origin{spec_.id, uint32_t(i), i < pulls.size() ? pulls[i] : 0};
        auto tracker = std::make_shared<AckTracker>(control_, std::move(restored), std::move(origin));
        if (const sluice_acknowledged_ext *ack = instances_[i].acknowledged) {
            void *handle = instances_[i].handle;
            tracker->on_commit([ack, handle](const std::string &position) {
                ack->acknowledged(handle, position.data(), position.size());
            });
        }
        trackers_.push_back(std::move(tracker));
    }
    return {};
}

bool Stage::wants_acknowledgements() const {
    if (!can_resume()) return false;
    for (const Instance &inst : instances_)
        if (!inst.acknowledged) return false;
    return true;
}

std::string Stage::resolve_config_outputs() {
    if (!(plugin_.desc->capabilities & SLUICE_CAP_CONFIG_OUTPUTS)) return {};
    const void *ext = instances_.empty() || !plugin_.desc->get_extension
                          ? nullptr
                          : plugin_.desc->get_extension(instances_[0].handle, SLUICE_EXT_OUTPUTS);
    const auto *outputs = static_cast<const sluice_outputs_ext *>(ext);
    if (!outputs || outputs->struct_size < sizeof(sluice_outputs_ext) || !outputs->count || !outputs->name)
        return "the plugin declares config-chosen outputs but does not provide " SLUICE_EXT_OUTPUTS;
    std::vector<std::string> names;
    for (uint32_t i = 0; i < outputs->count(instances_[0].handle); ++i) {
        const char *n = outputs->name(instances_[0].handle, i);
        if (!n || !*n) return "output " + std::to_string(i) + " has no name";
        names.emplace_back(n);
    }
    if (names.empty()) return "the plugin's config gives it no output";
    plugin_.output_names = std::move(names);
    outputs_.assign(plugin_.output_names.size(), {});
    fail_output_ = -1;
    for (size_t i = 0; i < plugin_.output_names.size(); ++i)
        if (plugin_.output_names[i] == "fail") fail_output_ = int(i);
    return {};
}

std::string Stage::start_instances() {
    for (Instance &inst : instances_) {
        if (!plugin_.desc->start) {
            inst.started = true;
            continue;
        }
        sluice_status s = plugin_.desc->start(inst.handle);
        if (s != SLUICE_OK) return plugin_message(inst);
        inst.started = true;
    }
    return {};
}

void Stage::stop_and_destroy() {
    for (Instance &inst : instances_) {
        if (inst.started && plugin_.desc->stop) {
            if (plugin_.desc->stop(inst.handle) != SLUICE_OK)
                spdlog::warn("[{}] stop failed: {}", spec_.id, plugin_message(inst));
        }
        inst.started = false;
        if (inst.created) plugin_.desc->destroy(inst.handle);
        inst.created = false;
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
    std::string message = "stage '" + spec_.id + "' (" + std::string(kind_name(spec_.kind)) + " " + spec_.plugin +
                          "): " + what;
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
    if (dead_letter_) dead_letter_->producer_done();
}

void Stage::run_extractor(uint32_t worker) {
    Instance &inst = instance_for(worker);
    WorkerCounters &c = metrics_.worker(worker);
    std::vector<Batch> outputs;
    FailureBatch failures;
    BatchEmitter emitter(outputs, failures);
    int consecutive_errors = 0;
    std::optional<EnvironmentRetry> environment_retry;
    std::chrono::milliseconds idle{0};
    MemoryBudget &budget = MemoryBudget::global();
    double bytes_per_record = 1024; // a guess until the first pull says
    while (!control_.stop_requested()) {
        // Memory: read nothing more while the budget is spent, and no more
        // in one pull than a slice of it.
        if (!budget.wait_for_room(control_)) break;
        const uint32_t max_records = uint32_t(std::clamp<double>(
            double(budget.batch_bytes()) / std::max(bytes_per_record, 1.0), 1.0, double(spec_.batch_size)));
        outputs.clear();
        outputs.resize(output_count());
        failures = FailureBatch{};
        emitter.set_input(nullptr, 0, 0);
        int32_t end = 0;
        auto t0 = Clock::now();
        sluice_status s = plugin_.desc->pull(inst.handle, emitter.raw(), max_records, &end);
        c.add(c.busy_ns, elapsed_ns(t0));
        if (s == SLUICE_RETRY) {
            // The source cannot be read right now; nothing was consumed.
            std::string msg = plugin_message(inst);
            if (!environment_retry) environment_retry.emplace(spec_.retry_environment_ms);
            spdlog::debug("[{}] source unavailable, trying again: {}", spec_.id, msg);
            if (!environment_retry->wait(control_, true)) {
                // Out of time, unless the run is stopping anyway.
                if (!control_.stop_requested()) fail_environment(msg, environment_retry->attempts());
                return; // a source that could not be read is not flushed
            }
            continue;
        }
        environment_retry.reset();
        if (s == SLUICE_ERROR) {
            std::string msg = plugin_message(inst);
            ++consecutive_errors;
            c.add(c.errors, 1);
            metrics_.reason(false, msg);
            spdlog::warn("[{}] read failed ({} in a row): {}", spec_.id, consecutive_errors, msg);
            if (consecutive_errors >= kMaxConsecutivePullErrors) {
                fatal("reading failed " + std::to_string(consecutive_errors) + " times in a row: " + msg);
                return;
            }
            control_.sleep_for(backoff(consecutive_errors), true);
            continue;
        }
        if (s != SLUICE_OK) {
            fatal(plugin_message(inst));
            return;
        }
        consecutive_errors = 0;
        // New records get ids from one contiguous range per call.
        uint64_t produced = 0, bytes = 0;
        for (const auto &b : outputs) {
            produced += b.records.size();
            bytes += b.storage->arena.bytes_reserved() + b.records.size() * sizeof(sluice_record);
        }
        if (produced > 0) bytes_per_record = double(bytes) / double(produced);
        uint64_t id = control_.allocate_ids(produced + failures.items.size());
        for (auto &b : outputs)
            for (auto &r : b.records) r.id = id++;
        for (auto &f : failures.items) f.record.id = id++;
        c.add(c.in, produced);
        c.add(c.batches, 1);
        // The pull's acknowledgement token rides on every batch made of its
        // records; it completes when the last of them is gone.
        std::vector<AckRef> acks;
        if (!trackers_.empty()) {
            const char *pos = inst.checkpoint->position(inst.handle);
            acks.push_back(trackers_[worker]->issue(pos ? std::string(pos) : std::string(),
                                                    produced + failures.items.size()));
            for (auto &b : outputs) b.acks = acks;
        }
        if (produced > 0) {
            uint64_t seq;
            if (window_) {
                auto s = window_->acquire();
                if (!s) return; // aborted
                seq = *s;
            } else {
                seq = next_seq_.fetch_add(1);
            }
            for (auto &b : outputs) b.seq = seq;
        } else {
            // Nothing read this time (a real-time source between messages):
            // no batch to number, none to send.
            for (auto &b : outputs) b.seq = BatchQueue::kTailSeq;
        }
        if (!deliver(outputs, failures, c, 0, acks)) return;
        if (end) break;
        if (produced == 0 && failures.items.empty()) {
            // Nothing right now: back off a little instead of spinning.
            idle = std::min(std::max(idle * 2, std::chrono::milliseconds(1)), std::chrono::milliseconds(50));
            control_.sleep_for(idle, true);
        } else {
            idle = std::chrono::milliseconds(0);
        }
    }
    if (control_.aborted()) return;
    flush_instance(worker, outputs, failures, emitter);
}

void Stage::run_processor(uint32_t worker) {
    WorkerCounters &c = metrics_.worker(worker);
    std::vector<Batch> outputs;
    FailureBatch failures;
    BatchEmitter emitter(outputs, failures);
    while (auto in = input_->pop()) {
        const uint32_t n = uint32_t(in->size());
        outputs.clear();
        outputs.resize(output_count());
        for (auto &b : outputs) {
            b.seq = in->seq;
            b.records.reserve(n);
        }
        failures = FailureBatch{};
        c.add(c.in, n);
        c.add(c.batches, 1);
        // Exactly once: a pull the destination already holds (written before
        // a crash, read again since) is delivered already; any other batch
        // is written in one call together with the marker that covers it.
        uint32_t step = spec_.batch_size;
        const AckToken *pull = marker_ ? marked_pull(*in) : nullptr;
        if (marker_) {
            step = std::max<uint32_t>(n, 1);
            PullMarker next = *marker_;
            if (pull) {
                const uint32_t w = pull->tracker().origin().worker;
                if (already_held_ && already_held_->holds(w, pull->pull())) {
                    metrics_.counter_add("already_loaded", int64_t(n));
                    if (!deliver(outputs, failures, c, n, in->acks)) return;
                    continue;
                }
                next.add(w, pull->pull());
            }
            current_marker_ = next.text();
        }
        for (uint32_t off = 0; off < n; off += step) {
            const uint32_t count = std::min(step, n - off);
            Mark m = mark(outputs, failures);
            std::string msg;
            sluice_status s = call_retrying_environment(worker, *in, off, count, outputs, failures, emitter, c, msg);
            if (s == SLUICE_OK) continue;
            if (s != SLUICE_ERROR && s != SLUICE_RETRY) {
                fatal(msg);
                return;
            }
            // The whole slice failed: every record in it takes the error
            // path, or, when the environment failed, is left undelivered.
            rollback(outputs, failures, m);
            const FailureKind kind = s == SLUICE_RETRY ? FailureKind::undelivered : FailureKind::failed;
            for (uint32_t i = off; i < off + count; ++i) failures.items.push_back(Failure{kind, in->records[i], msg});
            if (count) failures.storage->parents.push_back(in->storage);
        }
        if (spec_.on_error.max_attempts > 1) retry_failed(worker, *in, outputs, failures, emitter, c);
        if (pull && !environment_failed_.load()) {
            marker_->add(pull->tracker().origin().worker, pull->pull());
            if (sync_each_batch_ && !sync_markers())
                fatal("cannot make the destination's delivery markers durable");
        }
        if (!in->acks.empty()) {
            for (auto &b : outputs) b.acks = in->acks;
            if (!durable_on_process_) {
                // Safe only once this stage has flushed.
                std::lock_guard lock(held_mutex_);
                auto &held = held_[instances_.size() == 1 ? 0 : worker];
                held.insert(held.end(), in->acks.begin(), in->acks.end());
            }
        }
        if (!deliver(outputs, failures, c, n, in->acks)) return;
    }
    if (control_.aborted()) return;
    flush_instance(worker, outputs, failures, emitter);
}

sluice_status Stage::call_retrying_environment(uint32_t worker, const Batch &input, uint32_t off, uint32_t count,
                                               std::vector<Batch> &outputs, FailureBatch &failures,
                                               BatchEmitter &emitter, WorkerCounters &c, std::string &message) {
    if (environment_failed_.load()) {
        // The stage has failed: what still reaches it is not delivered.
        std::lock_guard lock(environment_mutex_);
        message = environment_failure_;
        return SLUICE_RETRY;
    }
    Mark m = mark(outputs, failures);
    EnvironmentRetry retry(spec_.retry_environment_ms);
    for (;;) {
        sluice_status s = call_process(worker, input, off, count, outputs, failures, emitter, c, message);
        if (s != SLUICE_RETRY) return s;
        rollback(outputs, failures, m);
        spdlog::debug("[{}] environment failure, trying the batch again: {}", spec_.id, message);
        if (!retry.wait(control_, false)) {
            message = fail_environment(message, retry.attempts());
            return SLUICE_RETRY;
        }
    }
}

std::string Stage::fail_environment(const std::string &cause, int attempts) {
    const std::string tried = "tried " + std::to_string(attempts) + (attempts == 1 ? " time" : " times");
    std::string message = "not delivered: " + cause + " (" + tried + ")";
    {
        std::lock_guard lock(environment_mutex_);
        if (environment_failed_.load()) return environment_failure_;
        environment_failure_ = message;
        environment_failed_ = true;
    }
    std::string what = "stage '" + spec_.id + "' (" + std::string(kind_name(spec_.kind)) + " " + spec_.plugin +
                       ") failed: " + cause + " (" + tried + " over up to " + std::to_string(spec_.retry_environment_ms) +
                       " ms)";
    spdlog::error("{}", what);
    control_.fail(what);
    return message;
}

sluice_status Stage::call_process(uint32_t worker, const Batch &input, uint32_t off, uint32_t count,
                                  std::vector<Batch> &outputs, FailureBatch &failures, BatchEmitter &emitter,
                                  WorkerCounters &c, std::string &message) {
    Instance &inst = instance_for(worker);
    const sluice_stage_descriptor *desc = plugin_.desc;
    auto t0 = Clock::now();
    // A shared (concurrent) instance cannot be replaced under the other
    // workers, so it gets no time limit.
    if (spec_.timeout_ms == 0 || (instances_.size() == 1 && spec_.threads > 1)) {
        emitter.set_input(&input, off, count);
        sluice_status s =
            marker_ ? exactly_once_ext_->process_marked(inst.handle, input.records.data() + off, count, emitter.raw(),
                                                        current_marker_.data(), current_marker_.size())
                    : desc->process(inst.handle, input.records.data() + off, count, emitter.raw());
        c.add(c.busy_ns, elapsed_ns(t0));
        if (s != SLUICE_OK) message = plugin_message(inst);
        return s;
    }
    // The call runs on its own thread into its own buffers, so an abandoned
    // call can never write into what this worker goes on with.
    struct Call {
        std::mutex mutex;
        std::condition_variable cv;
        bool done = false, abandoned = false;
        Batch input;
        std::vector<Batch> outputs;
        FailureBatch failures;
        sluice_status status = SLUICE_OK;
        std::string message;
    };
    auto call = std::make_shared<Call>();
    call->input.seq = input.seq;
    call->input.storage = input.storage;
    call->input.records.assign(input.records.begin() + off, input.records.begin() + off + count);
    call->outputs.resize(output_count());
    Instance orphan = inst; // what the thread destroys if it is abandoned
    auto abandoned_counter = abandoned_;
    const sluice_exactly_once_ext *marked = marker_ ? exactly_once_ext_ : nullptr;
    std::thread thread([call, desc, orphan, abandoned_counter, marked, marker = current_marker_] {
        BatchEmitter e(call->outputs, call->failures);
        e.set_input(&call->input, 0, uint32_t(call->input.records.size()));
        const uint32_t n = uint32_t(call->input.records.size());
        sluice_status s = marked ? marked->process_marked(orphan.handle, call->input.records.data(), n, e.raw(),
                                                          marker.data(), marker.size())
                                 : desc->process(orphan.handle, call->input.records.data(), n, e.raw());
        std::string msg = s != SLUICE_OK && desc->last_error ? std::string(desc->last_error(orphan.handle)) : "";
        bool abandoned;
        {
            std::lock_guard lock(call->mutex);
            call->status = s;
            call->message = msg;
            call->done = true;
            abandoned = call->abandoned;
        }
        call->cv.notify_all();
        if (abandoned) {
            if (orphan.started && desc->stop) desc->stop(orphan.handle);
            desc->destroy(orphan.handle);
            abandoned_counter->fetch_sub(1);
        }
    });
    std::unique_lock lock(call->mutex);
    bool done = call->cv.wait_for(lock, std::chrono::milliseconds(spec_.timeout_ms), [&] { return call->done; });
    if (!done) {
        call->abandoned = true;
        abandoned_->fetch_add(1);
        lock.unlock();
        thread.detach();
        c.add(c.busy_ns, elapsed_ns(t0));
        message = "timed out after " + std::to_string(spec_.timeout_ms) + " ms";
        if (!durable_on_process_) {
            // The instance holds records it took in earlier calls and has not
            // made durable yet (they are made so only by its flush): they
            // would be lost with it.
            message += " in a stage that keeps records until it flushes; the records it held cannot be saved";
            inst = Instance{}; // the abandoned call's thread destroys it when the call returns
            return SLUICE_FATAL;
        }
        spdlog::warn("[{}] a call {}; replacing the instance (the old one is destroyed when the call returns)",
                     spec_.id, message);
        // A fresh instance for this worker.
        Instance fresh;
        std::string problem = create_instance(worker, uint32_t(instances_.size()), fresh);
        if (problem.empty() && desc->start) {
            if (desc->start(fresh.handle) != SLUICE_OK) problem = plugin_message(fresh);
        }
        fresh.started = problem.empty();
        inst = fresh;
        if (!problem.empty()) {
            message += "; a new instance could not be made: " + problem;
            return SLUICE_FATAL;
        }
        return SLUICE_ERROR;
    }
    lock.unlock();
    thread.join();
    c.add(c.busy_ns, elapsed_ns(t0));
    if (call->status != SLUICE_OK) {
        message = call->message.empty() ? std::string("(the plugin gave no message)") : call->message;
        return call->status;
    }
    for (size_t o = 0; o < outputs.size(); ++o) {
        Batch &from = call->outputs[o];
        if (from.records.empty()) continue;
        outputs[o].keep(from.storage);
        outputs[o].keep(input.storage);
        outputs[o].records.insert(outputs[o].records.end(), from.records.begin(), from.records.end());
    }
    if (!call->failures.items.empty()) {
        failures.storage->parents.push_back(call->failures.storage);
        for (auto &f : call->failures.items) failures.items.push_back(std::move(f));
    }
    return SLUICE_OK;
}

bool Stage::wait_for_abandoned_calls(std::chrono::milliseconds limit) {
    auto deadline = Clock::now() + limit;
    while (abandoned_->load() > 0) {
        if (Clock::now() > deadline) return false;
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return true;
}

void Stage::flush_instance(uint32_t worker, std::vector<Batch> &outputs, FailureBatch &failures,
                           BatchEmitter &emitter) {
    // A shared (concurrent) instance is flushed once, by the last worker to
    // finish its input: the others are done with it by then.
    const bool shared = instances_.size() == 1 && spec_.threads > 1;
    if (shared && draining_.fetch_sub(1) != 1) return;
    if (!plugin_.desc->flush) {
        std::lock_guard lock(held_mutex_); // nothing to flush: nothing held
        held_[instances_.size() == 1 ? 0 : worker].clear();
        return;
    }
    Instance &inst = instance_for(worker);
    WorkerCounters &c = metrics_.worker(worker);
    outputs.clear();
    outputs.resize(output_count());
    for (auto &b : outputs) b.seq = BatchQueue::kTailSeq;
    failures = FailureBatch{};
    emitter.set_input(nullptr, 0, 0);
    auto t0 = Clock::now();
    sluice_status s = plugin_.desc->flush(inst.handle, emitter.raw());
    c.add(c.busy_ns, elapsed_ns(t0));
    if (s != SLUICE_OK) {
        fatal("flush failed: " + plugin_message(inst));
        return;
    }
    uint64_t produced = 0;
    for (const auto &b : outputs) produced += b.records.size();
    uint64_t id = control_.allocate_ids(produced);
    for (auto &b : outputs)
        for (auto &r : b.records)
            if (r.id == 0) r.id = id++;
    if (spec_.kind == SLUICE_KIND_EXTRACTOR) c.add(c.in, produced);
    // What the flush emitted came from what the stage held: it carries
    // their acknowledgements on (a loader has no outputs: they complete here).
    std::vector<AckRef> acks;
    if (spec_.kind == SLUICE_KIND_EXTRACTOR && !trackers_.empty()) {
        const char *pos = inst.checkpoint->position(inst.handle);
        acks.push_back(trackers_[worker]->issue(pos ? std::string(pos) : std::string(), produced));
    } else {
        std::lock_guard lock(held_mutex_);
        acks.swap(held_[instances_.size() == 1 ? 0 : worker]);
    }
    for (auto &b : outputs) b.acks = acks;
    deliver(outputs, failures, c, 0, acks);
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
    if (!failures.items.empty() && !handle_failures(failures, c, acks)) return false;
    return !control_.aborted();
}

void Stage::retry_failed(uint32_t worker, const Batch &input, std::vector<Batch> &outputs, FailureBatch &failures,
                         BatchEmitter &emitter, WorkerCounters &c) {
    const ErrorPolicy &policy = spec_.on_error;
    for (uint32_t attempt = 2; attempt <= policy.max_attempts; ++attempt) {
        // The records still failing become a batch of their own.
        Batch again;
        again.seq = input.seq;
        // Failed records point into the storage the failure list keeps
        // alive; share it (not the list's own storage, which will keep this
        // batch alive in turn).
        again.storage->parents = failures.storage->parents;
        std::vector<Failure> kept;
        for (auto &f : failures.items) {
            if (f.kind == FailureKind::failed) again.records.push_back(f.record);
            else kept.push_back(std::move(f));
        }
        if (again.records.empty()) return;
        failures.items = std::move(kept);
        c.add(c.retries, again.records.size());
        spdlog::debug("[{}] retrying {} records (attempt {} of {})", spec_.id, again.records.size(), attempt,
                      policy.max_attempts);
        if (!control_.sleep_for(retry_delay(policy, attempt - 1), false)) return;
        const uint32_t n = uint32_t(again.records.size());
        Mark m = mark(outputs, failures);
        std::string msg;
        sluice_status s = call_retrying_environment(worker, again, 0, n, outputs, failures, emitter, c, msg);
        if (s != SLUICE_OK && s != SLUICE_ERROR && s != SLUICE_RETRY) {
            fatal(msg);
            return;
        }
        if (s != SLUICE_OK) {
            rollback(outputs, failures, m);
            const FailureKind kind = s == SLUICE_RETRY ? FailureKind::undelivered : FailureKind::failed;
            for (const auto &r : again.records) failures.items.push_back(Failure{kind, r, msg, attempt});
            failures.storage->parents.push_back(again.storage);
            continue;
        }
        for (size_t i = m.failures; i < failures.items.size(); ++i) failures.items[i].attempts = attempt;
        failures.storage->parents.push_back(again.storage);
    }
}

void Stage::log_failure(const Failure &f) {
    const bool rejected = f.kind == FailureKind::rejected;
    uint64_t n = failures_logged_.fetch_add(1, std::memory_order_relaxed);
    auto level = n < kFailuresLoggedPerStage ? spdlog::level::warn : spdlog::level::debug;
    if (!spdlog::should_log(level)) return;
    std::string_view source = attr_value(f.record, SLUICE_ATTR_SOURCE);
    std::string_view line = attr_value(f.record, SLUICE_ATTR_SOURCE_LINE);
    std::string where;
    if (!source.empty()) where = " (" + std::string(source) + (line.empty() ? "" : ":" + std::string(line)) + ")";
    const char *what = rejected                                ? "rejected"
                       : f.kind == FailureKind::unreadable  ? "could not read"
                       : f.kind == FailureKind::undelivered ? "could not deliver"
                                                            : "failed";
    std::string tries = f.attempts > 1 ? " after " + std::to_string(f.attempts) + " attempts" : "";
    spdlog::log(level, "[{}] {} record {}{}{}: {}", spec_.id, what, f.record.id, where, tries, f.message);
    if (n + 1 == kFailuresLoggedPerStage)
        spdlog::warn("[{}] further failures are logged at debug level; the report counts them all", spec_.id);
}

bool Stage::handle_failures(const FailureBatch &failures, WorkerCounters &c, const std::vector<AckRef> &acks) {
    const ErrorPolicy &policy = spec_.on_error;
    Batch dead;
    dead.seq = BatchQueue::kTailSeq;
    dead.acks = acks; // acknowledged once the dead letters are loaded
    for (const auto &f : failures.items) {
        const bool rejected = f.kind == FailureKind::rejected;
        metrics_.reason(rejected, f.message);
        log_failure(f);
        if (rejected) continue;
        if (f.kind == FailureKind::undelivered) {
            // Neither skipped nor dead-lettered: the saved position must
            // stay before it, so the next run reads it again.
            for (const AckRef &a : acks) a->poison();
            continue;
        }
        if (policy.then == ErrorPolicy::Then::dead_letter && dead_letter_) {
            dead_letter::Letter letter;
            letter.payload = {f.record.payload, f.record.payload_len};
            letter.payload_is_json = f.record.content_type == nullptr ||
                                     std::string_view(f.record.content_type) == SLUICE_CONTENT_JSON;
            letter.record_id = f.record.id;
            letter.stage = spec_.id;
            letter.plugin = spec_.plugin;
            letter.kind = f.kind == FailureKind::unreadable ? "unreadable" : "failed";
            letter.error = f.message;
            letter.attempts = f.attempts;
            for (uint32_t i = 0; i < f.record.attr_count; ++i)
                letter.attributes.emplace_back(std::string_view(f.record.attrs[i].key, f.record.attrs[i].key_len),
                                               std::string_view(f.record.attrs[i].value, f.record.attrs[i].value_len));
            std::string envelope = dead_letter::write(letter);
            sluice_record r{};
            r.id = f.record.id;
            r.payload = dead.storage->arena.copy(envelope);
            r.payload_len = envelope.size();
            dead.records.push_back(r);
        } else if (policy.then == ErrorPolicy::Then::fail) {
            // Not delivered: the saved position must stay before it.
            for (const AckRef &a : acks) a->poison();
            control_.fail("stage '" + spec_.id + "' (" + std::string(kind_name(spec_.kind)) + " " + spec_.plugin +
                          "): record " + std::to_string(f.record.id) + " failed and on_error is fail: " + f.message);
        }
    }
    if (dead.records.empty()) return true;
    c.add(c.dead_lettered, dead.records.size());
    return dead_letter_->push(std::move(dead));
}
} // namespace sluice
