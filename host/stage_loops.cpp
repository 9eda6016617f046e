// Stage: the worker loops. An extractor pulls (within the memory budget)
// and numbers its batches; a processor takes batches from its input queue,
// calls its plugin on them and retries what failed, per the error policy.
#include "stage.hpp"

#include "environment_retry.hpp"
#include "error_policy.hpp"
#include "memory_budget.hpp"
#include "stage_detail.hpp"
#include "thread_cpu.hpp"

#include <spdlog/spdlog.h>

#include <sluice/backoff.hpp>

#include <algorithm>

namespace sluice {

using namespace stage_detail;

namespace {

// Backoff between failed pulls (doubled each time, with jitter).
constexpr std::chrono::milliseconds kRetryBase{100};
constexpr std::chrono::milliseconds kRetryMax{2000};
// An extractor whose pull fails this many times in a row stops the pipeline.
constexpr int kMaxConsecutivePullErrors = 5;

} // namespace

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
    CpuMeter cpu;
    auto charge_cpu = [&](uint64_t ns) { c.add(c.cpu_ns, ns); };
    struct ChargeEachRound {
        CpuMeter &cpu;
        decltype(charge_cpu) &charge;
        ~ChargeEachRound() { cpu.charge(charge); }
    };
    while (!control_.stop_requested()) {
        ChargeEachRound charge_round{cpu, charge_cpu};
        if (pause_requested_.load(std::memory_order_acquire)) {
            hold_while_paused(); // a live reload rewires the pipeline
            continue;
        }
        // Memory: read nothing more while the budget is spent, and no more
        // in one pull than a slice of it.
        if (!budget.wait_for_room(control_)) break;
        uint32_t max_records = uint32_t(std::clamp<double>(
            double(budget.batch_bytes()) / std::max(bytes_per_record, 1.0), 1.0, double(spec_.batch_size)));
        // A record limit is shared by the stage's workers: each takes a
        // share before it pulls and gives back what it did not read.
        uint64_t granted = 0;
        if (spec_.record_limit) {
            uint64_t taken = limit_taken_.load();
            do {
                if (taken >= spec_.record_limit) break;
                granted = std::min<uint64_t>(max_records, spec_.record_limit - taken);
            } while (!limit_taken_.compare_exchange_weak(taken, taken + granted));
            if (granted == 0) break;
            max_records = uint32_t(granted);
        }
        outputs.clear();
        outputs.resize(output_count());
        // Room for a full pull up front (growing by doubling was ten
        // reallocations a batch); with several outputs none is known to fill.
        if (outputs.size() == 1) outputs[0].records.reserve(max_records);
        failures = FailureBatch{};
        emitter.set_input(nullptr, 0, 0);
        bool end = false;
        auto t0 = Clock::now();
        CallResult r = instance_for(worker).pull(emitter, max_records, end);
        const uint64_t took = elapsed_ns(t0);
        c.add(c.busy_ns, took);
        metrics_.latency().observe(took);
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
            control_.sleep_for(backoff_delay(kRetryBase, kRetryMax, uint32_t(consecutive_errors)), true);
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
        if (spec_.record_limit) {
            if (produced < granted) limit_taken_.fetch_sub(granted - produced);
            if (limit_taken_.load() >= spec_.record_limit) end = true;
        }
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
    cpu.charge(charge_cpu);
}

bool Stage::commits_in_windows() const {
    return spec_.kind == SLUICE_KIND_LOADER && (plugin_.desc->capabilities & SLUICE_CAP_COMMIT_WINDOWS) &&
           plugin_.library && plugin_.library->abi_minor() >= 4 && !spec_.isolation.process &&
           spec_.commit_records > 1;
}

std::optional<Batch> Stage::next_input(uint32_t worker, UnsettledAcks &unsettled) {
    if (carried_) {
        std::optional<Batch> b = std::move(carried_);
        carried_.reset();
        return b;
    }
    if (unsettled.acks.empty()) return input_->pop();
    // Long enough for a busy queue's next batch to arrive, short enough
    // that an HTTP client waiting for its answer does not notice.
    constexpr auto kIdle = std::chrono::milliseconds(5);
    if (std::optional<Batch> b = input_->pop_until(std::chrono::steady_clock::now() + kIdle)) return b;
    if (!settle(worker, unsettled)) return std::nullopt;
    return input_->pop();
}

void Stage::hold_until_settled(uint32_t worker, const std::vector<AckRef> &acks, UnsettledAcks &unsettled) {
    const uint64_t calls = calls_returned_[worker];
    if (calls > unsettled.after_call) unsettled.acks.clear(); // a later call returned: durable
    unsettled.acks.insert(unsettled.acks.end(), acks.begin(), acks.end());
    unsettled.after_call = calls;
}

bool Stage::settle(uint32_t worker, UnsettledAcks &unsettled) {
    if (control_.aborted()) return false;
    {
        wait_while_swap_pending();
        std::shared_lock swap_guard(swap_mutex_);
        if (!settle_instance(worker)) return false;
    }
    unsettled.acks.clear();
    return true;
}

bool Stage::settle_instance(uint32_t worker) {
    StageInstance &inst = instance_for(worker);
    if (!inst.features().settle) return true;
    CallResult r = inst.settle();
    if (r.ok()) return true;
    fatal("records it had accepted were not made durable (none of them is acknowledged): " + r.message);
    return false;
}

size_t Stage::gather_window(Batch &window, std::vector<const AckToken *> *pulls) {
    auto bytes_of = [](const Batch &b) {
        uint64_t n = 0;
        for (const sluice_record &r : b.records) n += r.payload_len;
        return n;
    };
    uint64_t bytes = bytes_of(window);
    size_t joined = 0;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(spec_.commit_interval_ms);
    const MemoryBudget &budget = MemoryBudget::global();
    while (window.size() < spec_.commit_records && bytes < spec_.commit_bytes) {
        // With the memory budget spent the extractors wait for this window
        // to be written: nothing more is coming, so waiting is pointless.
        const bool spent = budget.used() >= budget.limit();
        std::optional<Batch> more = input_->pop_until(spent ? std::chrono::steady_clock::now() : deadline);
        if (!more) break;
        if (pulls) {
            const AckToken *pull = marked_pull(*more);
            if (!pull || held_already(*pull)) {
                carried_ = std::move(more);
                break;
            }
            pulls->push_back(pull);
        }
        ++joined;
        bytes += bytes_of(*more);
        window.records.insert(window.records.end(), more->records.begin(), more->records.end());
        window.keep(more->storage);
        window.acks.insert(window.acks.end(), more->acks.begin(), more->acks.end());
    }
    return joined;
}

void Stage::run_processor(uint32_t worker) {
    WorkerCounters &c = metrics_.worker(worker);
    std::vector<Batch> outputs;
    FailureBatch failures;
    BatchEmitter emitter(outputs, failures);
    bool recovering = recovery_.has_value();
    CpuMeter cpu;
    auto charge_cpu = [&](uint64_t ns) { c.add(c.cpu_ns, ns); };
    UnsettledAcks unsettled; // let go after the flush at the latest
    while (auto in = next_input(worker, unsettled)) {
        // Counted as in hand until delivered: a reload waits for it; the
        // thread's CPU charged to the stage once it is.
        struct InHand {
            BatchQueue &queue;
            CpuMeter &cpu;
            decltype(charge_cpu) &charge;
            size_t popped = 1;
            ~InHand() {
                for (size_t i = 0; i < popped; ++i) queue.done();
                cpu.charge(charge);
            }
        } in_hand{*input_, cpu, charge_cpu};
        wait_while_swap_pending();
        std::shared_lock swap_guard(swap_mutex_); // a live replacement waits for this batch
        const bool windowed = !recovering && commits_in_windows();
        // Exactly once: the pulls this call writes (the marker written with
        // them covers them all); a pull the destination already holds
        // (written before a crash, read again since) is delivered already.
        const AckToken *first_pull = marker_ ? marked_pull(*in) : nullptr;
        const bool held = first_pull && held_already(*first_pull);
        std::vector<const AckToken *> pulls;
        if (first_pull && !held) pulls.push_back(first_pull);
        if (windowed && !held && (!marker_ || first_pull))
            in_hand.popped += gather_window(*in, marker_ ? &pulls : nullptr);
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
        // Exactly once: any batch not held already is written in one call
        // together with the marker that covers it.
        uint32_t step = windowed ? std::max<uint32_t>(n, 1) : spec_.batch_size;
        if (marker_) {
            step = std::max<uint32_t>(n, 1);
            if (held) {
                metrics_.counter_add("already_loaded", int64_t(n));
                if (!deliver(outputs, failures, c, n, in->acks)) return;
                continue;
            }
            PullMarker next = *marker_;
            for (const AckToken *pull : pulls) next.add(pull->tracker().origin().worker, pull->pull());
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
        if (!pulls.empty() && !environment_failed_.load()) {
            for (const AckToken *pull : pulls) marker_->add(pull->tracker().origin().worker, pull->pull());
            if (sync_each_batch_ && !sync_markers())
                fatal("cannot make the destination's delivery markers durable");
        }
        // (A live replacement may have put a plugin that does not settle
        // in its place: what the worker held is let go as usual.)
        if (acks_wait_for_next_call_ || !unsettled.acks.empty())
            hold_until_settled(worker, acks_wait_for_next_call_ ? in->acks : std::vector<AckRef>{}, unsettled);
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
    inputs_ended_.fetch_add(1);
    if (control_.aborted()) return;
    std::shared_lock swap_guard(swap_mutex_);
    flush_instance(worker, outputs, failures, emitter);
    cpu.charge(charge_cpu);
}

void Stage::flush_instance(uint32_t worker, std::vector<Batch> &outputs, FailureBatch &failures,
                           BatchEmitter &emitter) {
    // A shared (concurrent) instance is flushed once, by the last worker to
    // finish its input: the others are done with it by then.
    if (shares_one_instance() && draining_.fetch_sub(1) != 1) return;
    flush_one(worker, outputs, failures, emitter);
}

bool Stage::flush_one(uint32_t worker, std::vector<Batch> &outputs, FailureBatch &failures, BatchEmitter &emitter) {
    // Whatever the instance accepted is durable before it flushes (at the
    // end of input, and before a live replacement stops it).
    if (!settle_instance(worker)) return false;
    if (!plugin_.desc->flush) {
        std::lock_guard lock(held_mutex_); // nothing to flush: nothing held
        held_[instances_.size() == 1 ? 0 : worker].clear();
        return true;
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
    const uint64_t took = elapsed_ns(t0);
    c.add(c.busy_ns, took);
    metrics_.latency().observe(took);
    if (r.death) {
        metrics_.worker_crashed(r.death->report_key());
        fatal("its worker died (" + r.death->what + ") during flush: what it held is lost");
        return false;
    }
    if (r.status != SLUICE_OK) {
        fatal("flush failed: " + r.message);
        return false;
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
    return deliver(outputs, failures, c, 0, acks);
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
