// Stage: one guarded plugin call. Environment errors are retried; an
// isolated worker that dies is replaced and the batch sent again, then
// bisected down to its poison records; after a crash in process, the stage
// runs isolated until it is past the batch that crashed.
#include "stage.hpp"

#include "environment_retry.hpp"
#include "kinds.hpp"
#include "poison_bisection.hpp"
#include "stage_detail.hpp"

#include <spdlog/spdlog.h>

namespace sluice {

using namespace stage_detail;

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
    auto fresh = InProcessInstance::create(setup_for(spec_, plugin_, config_text_, worker, uint32_t(instances_.size())), abandoned_, problem);
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
    // A loader that commits while the next call runs, on an instance the
    // acknowledgements cannot wait on (shared by workers): settled now.
    if (r.ok() && inst.features().settle && !acks_wait_for_next_call_) r = inst.settle();
    if (!r.death && r.status != SLUICE_FATAL && worker < calls_returned_.size()) ++calls_returned_[worker];
    const uint64_t took = elapsed_ns(t0);
    c.add(c.busy_ns, took);
    metrics_.latency().observe(took);
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
            if (marker_) {
                // An exactly-once loader writes a pull with the marker that
                // covers all of it: a part written alone would be taken for
                // the whole after a crash. It is not split.
                message = "its worker died twice on a batch (" + r.death->what +
                          ") and a loader that delivers exactly once cannot split it to find the record";
                return SLUICE_FATAL;
            }
            // Twice: look for the records that kill it. Deaths while
            // narrowing down are free; each poison record after the first
            // counts against max_restarts.
            uint32_t poison_found = 0;
            auto attempt = [&](uint32_t first, uint32_t n) -> Attempt {
                Mark before = mark(outputs, failures);
                CallResult a = call_once(worker, input, first, n, emitter, failures, c);
                // A part that answers SLUICE_RETRY is an environment error,
                // as on the main path: tried again for retry_environment_ms,
                // then the stage fails and the part is left undelivered
                // (never a record error that could be skipped).
                EnvironmentRetry part_retry(spec_.retry_environment_ms);
                while (!a.death && a.status == SLUICE_RETRY) {
                    rollback(outputs, failures, before);
                    if (environment_failed_.load() || !part_retry.wait(control_, false)) {
                        a.message = fail_environment(a.message, part_retry.attempts());
                        break;
                    }
                    a = call_once(worker, input, first, n, emitter, failures, c);
                }
                if (!a.death) {
                    if (a.status != SLUICE_OK) {
                        rollback(outputs, failures, before);
                        // SLUICE_FATAL stops the run, as on the main path;
                        // its records, like an environment failure's, are
                        // not delivered.
                        if (a.status == SLUICE_FATAL) fatal(a.message);
                        const FailureKind kind = a.status == SLUICE_RETRY || a.status == SLUICE_FATAL
                                                     ? FailureKind::undelivered
                                                     : FailureKind::failed;
                        for (uint32_t i = first; i < first + n; ++i)
                            failures.items.push_back(Failure{kind, input.records[i], a.message});
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

} // namespace sluice
