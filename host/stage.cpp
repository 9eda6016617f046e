#include "stage.hpp"

#include "environment_retry.hpp"
#include "error_policy.hpp"
#include "host_services.hpp"
#include "isolated_instance.hpp"
#include "kinds.hpp"
#include "memory_budget.hpp"
#include "poison_bisection.hpp"

#include <boost/asio/post.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
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

std::chrono::milliseconds backoff(int attempt) {
    thread_local std::minstd_rand rng{std::random_device{}()};
    auto d = kRetryBase * (1 << std::min(attempt, 10));
    if (d > kRetryMax) d = kRetryMax;
    std::uniform_int_distribution<int64_t> jitter(0, d.count() / 2);
    return d + std::chrono::milliseconds(jitter(rng));
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

bool known_status(sluice_status s) {
    return s == SLUICE_OK || s == SLUICE_ERROR || s == SLUICE_RETRY || s == SLUICE_FATAL;
}

} // namespace

Stage::Stage(StageSpec spec, LoadedStage plugin, PipelineControl &control, std::string base_dir)
    : spec_(std::move(spec)), plugin_(std::move(plugin)), control_(control), base_dir_(std::move(base_dir)),
      metrics_(spec_.threads) {
    config_text_ = boost::json::serialize(spec_.config);
    label_ = crash_reporter::make_label(spec_.id, std::string(kind_name(spec_.kind)).c_str(), spec_.plugin);
    HostServices::fill(host_, *this);
    outputs_.resize(plugin_.output_names.size());
    for (size_t i = 0; i < plugin_.output_names.size(); ++i)
        if (plugin_.output_names[i] == "fail") fail_output_ = int(i);
}

Stage::~Stage() {
    if (pool_) pool_->join();
    stop_and_destroy();
}

std::string Stage::describe() const {
    return "stage '" + spec_.id + "' (" + std::string(kind_name(spec_.kind)) + " " + spec_.plugin + ")";
}

InstanceSetup Stage::setup_for(uint32_t index, uint32_t count) const {
    InstanceSetup s;
    s.desc = plugin_.desc;
    s.host = &host_;
    s.library_path = plugin_.library ? plugin_.library->path() : std::string();
    s.stage_id = spec_.id;
    s.config_json = config_text_;
    s.base_dir = base_dir_;
    s.worker_index = index;
    s.worker_count = count;
    s.kind = spec_.kind;
    // A shared (concurrent) instance cannot be replaced under the other
    // workers, so in process it gets no time limit.
    const bool shared = !spec_.isolation.process && (plugin_.desc->capabilities & SLUICE_CAP_CONCURRENT);
    s.timeout_ms = shared && spec_.threads > 1 ? 0 : spec_.timeout_ms;
    s.label = &label_;
    return s;
}

std::unique_ptr<StageInstance> Stage::make_instance(uint32_t index, uint32_t count, std::string &problem) {
    InstanceSetup setup = setup_for(index, count);
    if (!spec_.isolation.process) return InProcessInstance::create(setup, abandoned_, problem);
    WorkerLimits limits;
    limits.memory_limit_mb = spec_.isolation.memory_limit_mb;
    limits.timeout_ms = spec_.timeout_ms;
    return IsolatedInstance::create(setup, limits, control_, metrics_, problem);
}

std::string Stage::create_instances() {
    // In process a concurrent plugin gets one instance shared by the
    // workers; isolated, each worker has a process (and instance) of its own.
    const bool shared = (plugin_.desc->capabilities & SLUICE_CAP_CONCURRENT) && !spec_.isolation.process;
    const uint32_t count = shared ? 1 : spec_.threads;
    instances_.clear();
    for (uint32_t i = 0; i < count; ++i) {
        std::string problem;
        auto inst = make_instance(i, count, problem);
        if (!inst) return problem;
        instances_.push_back(std::move(inst));
    }
    const InstanceFeatures &f = instances_[0]->features();
    // Loaders are durable only after flush unless they say otherwise; other
    // stages pass on everything within the call unless they say otherwise.
    durable_on_process_ = f.durable_on_process.value_or(spec_.kind != SLUICE_KIND_LOADER);
    exactly_once_ = spec_.kind == SLUICE_KIND_LOADER && f.exactly_once;
    return {};
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

std::string Stage::declared_resources() const {
    if (instances_.empty()) return {};
    return instances_[0]->resources();
}

const AckToken *Stage::marked_pull(const Batch &batch) const {
    if (batch.acks.size() != 1) return nullptr;
    const AckToken &t = *batch.acks[0];
    return t.tracker().origin().stage == marker_->extractor() ? &t : nullptr;
}

bool Stage::can_resume() const {
    if (spec_.kind != SLUICE_KIND_EXTRACTOR || instances_.empty()) return false;
    if (instances_.size() == 1 && spec_.threads > 1) return false; // one instance shared by workers
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
        if (instances_[i]->features().acknowledged) {
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

void Stage::isolate_until_past(const std::string &extractor, uint32_t worker, uint64_t pull) {
    spec_.isolation.process = true;
    recovery_ = CrashRecovery{extractor, worker, pull};
}

bool Stage::past_the_crash(const Batch &batch) const {
    if (recovery_->extractor.empty() || batch.acks.empty()) return false;
    for (const AckRef &a : batch.acks) {
        const PullOrigin &o = a->tracker().origin();
        if (o.stage == recovery_->extractor && o.worker == recovery_->worker && a->pull() > recovery_->pull) return true;
    }
    return false;
}

void Stage::return_to_process(uint32_t worker) {
    // Only an instance the worker has to itself, that keeps nothing across
    // calls, can change places mid-run: no flush, nothing held until a
    // flush, not shared (concurrent), not a loader (markers, held rows).
    const bool can = spec_.kind != SLUICE_KIND_LOADER && !plugin_.desc->flush && durable_on_process_ &&
                     !(plugin_.desc->capabilities & SLUICE_CAP_CONCURRENT);
    if (!can) {
        if (worker == 0)
            spdlog::info("[{}] past the batch that crashed the last run; the stage stays isolated for the rest of "
                         "this run (its plugin may keep records or state across calls)",
                         spec_.id);
        return;
    }
    std::string problem;
    auto fresh = InProcessInstance::create(setup_for(worker, uint32_t(instances_.size())), abandoned_, problem);
    if (fresh) problem = fresh->start();
    if (!problem.empty()) {
        spdlog::warn("[{}] could not return to the host's process, staying isolated: {}", spec_.id, problem);
        return;
    }
    std::unique_ptr<StageInstance> old = std::move(instances_[worker]);
    instances_[worker] = std::move(fresh);
    metrics_.worker_peak_rss(old->peak_rss_mb());
    old->stop();
    spdlog::info("[{}] worker {} is past the batch that crashed the last run: back in the host's process", spec_.id,
                 worker);
}

bool Stage::wait_for_abandoned_calls(std::chrono::milliseconds limit) {
    auto deadline = Clock::now() + limit;
    while (abandoned_->load() > 0) {
        if (Clock::now() > deadline) return false;
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return true;
}

CallResult Stage::call_once(uint32_t worker, const Batch &input, uint32_t off, uint32_t count, BatchEmitter &emitter,
                            FailureBatch &failures, WorkerCounters &c) {
    StageInstance &inst = instance_for(worker);
    emitter.set_input(&input, off, count);
    // Which pull the batch came from, for the line and the marker a crash
    // in process leaves (crash_reporter.hpp).
    if (input.acks.size() == 1) {
        const AckToken &t = *input.acks[0];
        crash_reporter::set_current_pull(t.tracker().origin().stage.c_str(), t.tracker().origin().worker, t.pull());
    } else {
        crash_reporter::set_current_pull(nullptr, 0, 0);
    }
    auto t0 = Clock::now();
    CallResult r = inst.process(input.records.data() + off, count, emitter, marker_ ? &current_marker_ : nullptr);
    c.add(c.busy_ns, elapsed_ns(t0));
    if (!emitter.refusal().empty() && !refusal_logged_.exchange(true))
        spdlog::warn("[{}] the host refused a call of plugin '{}': {} (logged once per stage)", spec_.id,
                     spec_.plugin, emitter.refusal());
    if (r.death) return r;
    if (!known_status(r.status)) {
        r.message = "the plugin returned status " + std::to_string(int(r.status)) + ", which the ABI does not know";
        r.status = SLUICE_ERROR;
        return r;
    }
    if (r.status != SLUICE_OK) return r;
    c.add(c.filtered, emitter.dropped());
    // Accounting: an input the plugin said nothing about cannot vanish.
    std::vector<uint32_t> missing = emitter.unaccounted();
    if (!missing.empty() && spec_.kind != SLUICE_KIND_LOADER) {
        static const std::string kReason = "the plugin did not account for this record";
        c.add(c.unaccounted, missing.size());
        if (!unaccounted_logged_.exchange(true))
            spdlog::warn("[{}] plugin '{}' neither forwarded, emitted from, rejected, failed nor dropped {} of "
                         "{} records in a call; they take the error path (logged once per stage)",
                         spec_.id, spec_.plugin, missing.size(), count);
        for (uint32_t i : missing) failures.items.push_back(Failure{FailureKind::failed, input.records[off + i], kReason, 1, false});
        failures.storage->parents.push_back(input.storage);
    }
    return r;
}

bool Stage::replace_dead_worker(uint32_t worker, const WorkerDeath &death, const std::string &during, bool charged,
                                std::string &why) {
    if (death.cause != WorkerDeath::Cause::not_running) {
        metrics_.worker_crashed(death.report_key());
        spdlog::error("[{}] the worker of plugin '{}' died ({}) during {}", spec_.id, spec_.plugin, death.what,
                      during);
    }
    if (control_.aborted()) {
        why = "the run is aborting";
        return false;
    }
    if (charged && !restarts_.take()) {
        why = "its worker died " + std::to_string(restarts_.per_minute() + 1) +
              " times within a minute (max_restarts " + std::to_string(restarts_.per_minute()) +
              "), the last time of " + death.what;
        return false;
    }
    // A little backoff: a worker that dies at start would otherwise spin.
    control_.sleep_for(std::chrono::milliseconds(20), false);
    why = instance_for(worker).restart();
    if (!why.empty()) {
        why = "a new worker could not be started: " + why;
        return false;
    }
    metrics_.worker_restarted();
    return true;
}

sluice_status Stage::call_guarded(uint32_t worker, const Batch &input, uint32_t off, uint32_t count,
                                  std::vector<Batch> &outputs, FailureBatch &failures, BatchEmitter &emitter,
                                  WorkerCounters &c, std::string &message) {
    if (environment_failed_.load()) {
        // The stage has failed: what still reaches it is not delivered.
        std::lock_guard lock(environment_mutex_);
        message = environment_failure_;
        return SLUICE_RETRY;
    }
    const std::string during = "a batch of " + std::to_string(count) + " records (ids " +
                               std::to_string(input.records[off].id) + ".." +
                               std::to_string(input.records[off + count - 1].id) + ")";
    // A worker that dies loses what the instance held from earlier calls
    // when its records become durable only at flush: nothing to retry then.
    auto unrecoverable = [&](const WorkerDeath &death) {
        message = "its worker died (" + death.what + ") in a stage that keeps records until it flushes; "
                  "the records it held cannot be saved";
        return SLUICE_FATAL;
    };
    Mark m = mark(outputs, failures);
    EnvironmentRetry retry(spec_.retry_environment_ms);
    int deaths = 0;
    for (;;) {
        CallResult r = call_once(worker, input, off, count, emitter, failures, c);
        if (r.death) {
            rollback(outputs, failures, m);
            if (!durable_on_process_) {
                metrics_.worker_crashed(r.death->report_key());
                return unrecoverable(*r.death);
            }
            std::string why;
            if (!replace_dead_worker(worker, *r.death, during, deaths == 0, why)) {
                message = "not processed: " + why;
                return SLUICE_ERROR;
            }
            if (++deaths < 2) continue; // the batch is sent again once
            // Twice: look for the records that kill it. Deaths while
            // narrowing down are free; each poison record after the first
            // counts against max_restarts.
            uint32_t poison_found = 0;
            auto attempt = [&](uint32_t first, uint32_t n) -> Attempt {
                Mark before = mark(outputs, failures);
                CallResult a = call_once(worker, input, first, n, emitter, failures, c);
                if (!a.death) {
                    if (a.status != SLUICE_OK) {
                        rollback(outputs, failures, before);
                        for (uint32_t i = first; i < first + n; ++i)
                            failures.items.push_back(Failure{FailureKind::failed, input.records[i], a.message});
                        failures.storage->parents.push_back(input.storage);
                    }
                    return {};
                }
                rollback(outputs, failures, before);
                const bool poison = n == 1;
                const bool charged = poison && ++poison_found > 1;
                const std::string part = poison ? "record " + std::to_string(input.records[first].id)
                                                : std::to_string(n) + " records of the batch";
                std::string sub_why;
                Attempt out{Attempt::Outcome::died, *a.death, false, {}};
                if (!replace_dead_worker(worker, *a.death, part + " (looking for the poison record)", charged, sub_why)) {
                    out.last = true;
                    out.stop_reason = sub_why;
                }
                return out;
            };
            Bisection b = find_poison(off, count, *r.death, attempt);
            for (const PoisonRecord &p : b.poison) {
                metrics_.poison_record(input.records[p.index].id);
                spdlog::error("[{}] record {} kills the worker of plugin '{}' ({}): it takes the error path",
                              spec_.id, input.records[p.index].id, spec_.plugin, p.death.what);
                failures.items.push_back(
                    Failure{FailureKind::failed, input.records[p.index], "worker crashed: " + p.death.what, 1, false});
            }
            for (auto [first, n] : b.untried)
                for (uint32_t i = first; i < first + n; ++i)
                    failures.items.push_back(Failure{FailureKind::failed, input.records[i],
                                                     "not processed: " + b.stopped_by->what, 1, false});
            if (!b.poison.empty() || !b.untried.empty()) failures.storage->parents.push_back(input.storage);
            spdlog::info("[{}] {} poison record(s) found in {} extra calls", spec_.id, b.poison.size(), b.calls);
            return SLUICE_OK;
        }
        if (r.status != SLUICE_RETRY) {
            message = r.message;
            return r.status;
        }
        rollback(outputs, failures, m);
        spdlog::debug("[{}] environment failure, trying the batch again: {}", spec_.id, r.message);
        if (!retry.wait(control_, false)) {
            message = fail_environment(r.message, retry.attempts());
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
    std::string what = describe() + " failed: " + cause + " (" + tried + " over up to " +
                       std::to_string(spec_.retry_environment_ms) + " ms)";
    spdlog::error("{}", what);
    control_.fail(what);
    return message;
}

void Stage::run_extractor(uint32_t worker) {
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
        bool end = false;
        auto t0 = Clock::now();
        CallResult r = instance_for(worker).pull(emitter, max_records, end);
        c.add(c.busy_ns, elapsed_ns(t0));
        if (r.death) {
            // What the dead worker read is gone with it; a new one goes on
            // from the last position it reported (IsolatedInstance::restart).
            std::string why;
            if (!instance_for(worker).features().checkpoint && c.batches.load() > 0) {
                metrics_.worker_crashed(r.death->report_key());
                fatal("its worker died (" + r.death->what + ") and the plugin cannot resume from a position "
                      "(no " SLUICE_EXT_CHECKPOINT "): a new worker would read the source again from the start");
                return;
            }
            if (!replace_dead_worker(worker, *r.death, "a pull", true, why)) {
                fatal(why);
                return;
            }
            continue;
        }
        const sluice_status s = known_status(r.status) ? r.status : SLUICE_FATAL;
        if (!known_status(r.status))
            r.message = "the plugin returned status " + std::to_string(int(r.status)) + ", which the ABI does not know";
        if (s == SLUICE_RETRY) {
            // The source cannot be read right now; nothing was consumed.
            std::string msg = r.message;
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
            std::string msg = r.message;
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
            fatal(r.message);
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
            acks.push_back(trackers_[worker]->issue(instance_for(worker).position(),
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
    bool recovering = recovery_.has_value();
    while (auto in = input_->pop()) {
        if (recovering && past_the_crash(*in)) {
            recovering = false;
            return_to_process(worker);
        }
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
            sluice_status s = call_guarded(worker, *in, off, count, outputs, failures, emitter, c, msg);
            if (s == SLUICE_OK) continue;
            if (s != SLUICE_ERROR && s != SLUICE_RETRY) {
                fatal(msg);
                return;
            }
            // The whole slice failed: every record in it takes the error
            // path, or, when the environment failed, is left undelivered.
            rollback(outputs, failures, m);
            const FailureKind kind = s == SLUICE_RETRY ? FailureKind::undelivered : FailureKind::failed;
            for (uint32_t i = off; i < off + count; ++i)
                failures.items.push_back(Failure{kind, in->records[i], msg, 1, kind == FailureKind::failed});
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
    StageInstance &inst = instance_for(worker);
    WorkerCounters &c = metrics_.worker(worker);
    outputs.clear();
    outputs.resize(output_count());
    for (auto &b : outputs) b.seq = BatchQueue::kTailSeq;
    failures = FailureBatch{};
    emitter.set_input(nullptr, 0, 0);
    auto t0 = Clock::now();
    CallResult r = inst.flush(emitter);
    c.add(c.busy_ns, elapsed_ns(t0));
    if (r.death) {
        metrics_.worker_crashed(r.death->report_key());
        fatal("its worker died (" + r.death->what + ") during flush: what it held is lost");
        return;
    }
    if (r.status != SLUICE_OK) {
        fatal("flush failed: " + r.message);
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
        acks.push_back(trackers_[worker]->issue(inst.position(), produced));
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
    if (!failures.items.empty() && !error_path_.route(failures, c, acks)) return false;
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
            if (f.kind == FailureKind::failed && f.retryable) again.records.push_back(f.record);
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
        sluice_status s = call_guarded(worker, again, 0, n, outputs, failures, emitter, c, msg);
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

} // namespace sluice
