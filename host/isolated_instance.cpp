#include "isolated_instance.hpp"

#include "call_log.hpp"
#include "emitter.hpp"
#include "host_services.hpp"

#include <spdlog/spdlog.h>

#include <chrono>
#include <cstring>

namespace sluice {

using worker::Header;
using worker::Op;

IsolatedInstance::IsolatedInstance(const InstanceSetup &setup, const WorkerLimits &limits, PipelineControl &control,
                                   StageMetrics &metrics)
    : setup_(setup), limits_(limits), control_(control), metrics_(metrics) {}

std::unique_ptr<IsolatedInstance> IsolatedInstance::create(const InstanceSetup &setup, const WorkerLimits &limits,
                                                           PipelineControl &control, StageMetrics &metrics,
                                                           std::string &problem) {
    std::unique_ptr<IsolatedInstance> inst(new IsolatedInstance(setup, limits, control, metrics));
    problem = inst->launch();
    if (!problem.empty()) return nullptr;
    return inst;
}

IsolatedInstance::~IsolatedInstance() {
    stop();
    if (worker_) worker_->shut_down();
}

bool IsolatedInstance::readable(uint64_t bytes) const {
    return worker_ && bytes <= worker::SharedRegion::kWindow && bytes <= worker_->output().file_size();
}

void IsolatedInstance::set_worker(std::shared_ptr<WorkerProcess> worker) {
    if (worker_) peak_rss_mb_ = std::max(peak_rss_mb_, worker_->peak_rss_mb());
    std::lock_guard lock(worker_mutex_);
    worker_ = std::move(worker); // the old one, if any, is killed once nothing uses it
}

std::string IsolatedInstance::launch() {
    set_worker(std::make_shared<WorkerProcess>());
    std::string problem = worker_->spawn(setup_.stage_id);
    if (!problem.empty()) return problem;
    worker::InitArgs args;
    args.library = setup_.library_path;
    args.sha256 = setup_.library_sha256;
    args.check_trust = setup_.check_library_trust ? 1 : 0;
    args.plugin = setup_.desc->name;
    args.stage_id = setup_.stage_id;
    args.config_json = setup_.config_json;
    args.base_dir = setup_.base_dir;
    args.kind = uint32_t(setup_.kind);
    args.worker_index = setup_.worker_index;
    args.worker_count = setup_.worker_count;
    args.log_level = uint32_t(spdlog::get_level());
    const std::string bytes = args.encode();
    if (!worker_->input().write(worker::kInputDataOffset, bytes)) return "cannot write to shared memory";
    Header command{Op::init};
    command.out_bytes = bytes.size();
    Header reply{};
    CallResult r = exchange(command, reply, false);
    if (r.death) return "the worker died while creating the instance (" + r.death->what + ")";
    if (r.status != SLUICE_OK) return r.message;
    features_ = InstanceFeatures{};
    features_.checkpoint = reply.a & worker::kHasCheckpoint;
    features_.acknowledged = reply.a & worker::kHasAcknowledged;
    features_.exactly_once = reply.a & worker::kHasExactlyOnce;
    features_.sync_markers = reply.a & worker::kHasSyncMarkers;
    if (reply.a & worker::kHasDelivery) features_.durable_on_process = (reply.a & worker::kDurableOnProcess) != 0;
    if (!readable(reply.out_bytes)) return "the worker's init reply is malformed";
    auto metrics = MetricsDeclaration::decode(std::string_view(worker_->output().data(), reply.out_bytes));
    if (!metrics) return "the worker's metrics declaration is malformed";
    features_.metrics = std::move(*metrics);
    return {};
}

CallResult IsolatedInstance::exchange(const Header &command, Header &reply, bool limited) {
    CallResult r;
    std::string text;
    if (!worker_ || !worker_->alive()) {
        r.death = WorkerDeath{WorkerDeath::Cause::not_running, "no worker running"};
        return r;
    }
    worker_->send(command);
    WorkerLimits limits = limits_;
    if (!limited) limits.timeout_ms = 0;
    auto on_message = [this](const Header &h, const std::string &t) {
        if (h.op == Op::log)
            spdlog::log(HostServices::to_spdlog(sluice_log_level(h.a)), "[{}] {}", setup_.stage_id, t);
        else if (h.op == Op::counter && !t.empty())
            metrics_.counter_add(t, h.value);
    };
    // A call without a time limit that runs for minutes is said so, not
    // waited on in silence.
    const auto started = std::chrono::steady_clock::now();
    auto next_warning = std::chrono::seconds(60);
    auto poll = [&] {
        if (control_.stop_requested()) worker_->flags().stop_requested.store(1);
        const auto running = std::chrono::steady_clock::now() - started;
        if (running >= next_warning) {
            spdlog::warn("[{}] a call of plugin '{}' has been running for {} s{}", setup_.stage_id, setup_.desc->name,
                         std::chrono::duration_cast<std::chrono::seconds>(running).count(),
                         limits.timeout_ms ? "" : " (set timeout_ms to bound it)");
            next_warning *= 2;
        }
        return !control_.aborted(); // aborting: nothing waits for a plugin
    };
    r.death = worker_->await_reply(limits, reply, text, on_message, poll);
    if (r.death) return r;
    r.status = sluice_status(reply.status);
    if (r.status != SLUICE_OK) r.message = text.empty() ? "(the plugin gave no message)" : text;
    return r;
}

CallResult IsolatedInstance::replayed(CallResult r, const Header &reply, BatchEmitter &out,
                                      const sluice_record *inputs, uint32_t count) {
    if (!r.ok()) return r;
    if (!readable(reply.out_bytes) || (features_.checkpoint && !readable(reply.out_bytes + reply.b))) {
        set_worker(nullptr); // a worker that lies about its results is not trusted again
        r.death = WorkerDeath{WorkerDeath::Cause::protocol, "a malformed reply"};
        return r;
    }
    std::string problem;
    if (!replay_calls(std::string_view(worker_->output().data(), reply.out_bytes), out, inputs, count, problem)) {
        // Nothing from a worker that scribbles over its results is trusted.
        set_worker(nullptr);
        r.death = WorkerDeath{WorkerDeath::Cause::protocol, problem};
    }
    return r;
}

std::string IsolatedInstance::start() {
    std::lock_guard lock(exchange_mutex_);
    Header reply{};
    CallResult r = exchange(Header{Op::start}, reply, false);
    if (r.death) return "the worker died during start (" + r.death->what + ")";
    if (r.status != SLUICE_OK) return r.message;
    started_ = true;
    return {};
}

void IsolatedInstance::stop() {
    std::lock_guard lock(exchange_mutex_);
    if (!started_ || !worker_ || !worker_->alive()) return;
    started_ = false;
    Header reply{};
    CallResult r = exchange(Header{Op::stop}, reply, false);
    if (!r.ok()) spdlog::warn("[{}] stop failed: {}", setup_.stage_id, r.death ? r.death->what : r.message);
}

std::vector<std::string> IsolatedInstance::config_outputs(std::string &problem) {
    std::lock_guard lock(exchange_mutex_);
    Header reply{};
    CallResult r = exchange(Header{Op::outputs}, reply, false);
    std::vector<std::string> names;
    if (!r.ok() || reply.a == 0 || !readable(reply.out_bytes)) {
        problem = "the plugin declares config-chosen outputs but does not provide " SLUICE_EXT_OUTPUTS;
        return names;
    }
    std::string_view all(worker_->output().data(), reply.out_bytes);
    while (!all.empty() && names.size() < reply.a) {
        size_t end = all.find('\0');
        if (end == std::string_view::npos) break;
        names.emplace_back(all.substr(0, end));
        all.remove_prefix(end + 1);
    }
    for (size_t i = 0; i < names.size(); ++i)
        if (names[i].empty()) problem = "output " + std::to_string(i) + " has no name";
    return names;
}

std::string IsolatedInstance::resources() {
    std::lock_guard lock(exchange_mutex_);
    Header reply{};
    CallResult r = exchange(Header{Op::resources}, reply, false);
    if (!r.ok() || !readable(reply.b)) return {};
    return std::string(worker_->output().data(), reply.b);
}

std::string IsolatedInstance::preflight() {
    std::lock_guard lock(exchange_mutex_);
    Header reply{};
    CallResult r = exchange(Header{Op::preflight}, reply, false);
    if (!r.ok()) return "the check could not run in the stage's worker process";
    if (!readable(reply.b)) return {};
    return std::string(worker_->output().data(), reply.b);
}

CallResult IsolatedInstance::pull(BatchEmitter &out, uint32_t max_records, bool &end_of_input) {
    std::lock_guard lock(exchange_mutex_);
    Header command{Op::pull};
    command.a = max_records;
    Header reply{};
    CallResult r = replayed(exchange(command, reply, true), reply, out, nullptr, 0);
    end_of_input = r.ok() && reply.a != 0;
    if (r.ok() && features_.checkpoint)
        position_.assign(worker_->output().data() + reply.out_bytes, reply.b);
    return r;
}

CallResult IsolatedInstance::process(const sluice_record *records, uint32_t count, BatchEmitter &out,
                                     const std::string *marker) {
    std::lock_guard lock(exchange_mutex_);
    scratch_.clear();
    encode_records(scratch_, records, count);
    Header command{Op::process};
    command.a = count;
    command.out_bytes = scratch_.size(); // the batch's bytes in the input region
    if (marker) {
        command.b = uint32_t(marker->size());
        scratch_ += *marker;
    }
    if (!worker_ || !worker_->input().write(worker::kInputDataOffset, scratch_)) {
        CallResult r;
        r.status = SLUICE_FATAL;
        r.message = "the batch does not fit in shared memory";
        return r;
    }
    Header reply{};
    return replayed(exchange(command, reply, true), reply, out, records, count);
}

CallResult IsolatedInstance::flush(BatchEmitter &out) {
    std::lock_guard lock(exchange_mutex_);
    Header reply{};
    // No time limit: a flush that makes output durable may take long, and a
    // death there cannot be recovered from anyway.
    return replayed(exchange(Header{Op::flush}, reply, false), reply, out, nullptr, 0);
}

std::string IsolatedInstance::position() {
    std::lock_guard lock(exchange_mutex_);
    return position_;
}

std::string IsolatedInstance::restore(const std::string &position) {
    std::lock_guard lock(exchange_mutex_);
    if (!worker_ || !worker_->input().write(worker::kInputDataOffset, position)) return "no worker";
    Header command{Op::restore};
    command.a = uint32_t(position.size());
    Header reply{};
    CallResult r = exchange(command, reply, false);
    if (r.death) return "the worker died (" + r.death->what + ")";
    if (r.status != SLUICE_OK) return r.message;
    position_ = position;
    return {};
}

void IsolatedInstance::acknowledged(const std::string &position) {
    // No reply, and no wait for the call in flight: the worker hears it
    // between calls. A message is sent whole, so it cannot interleave with
    // a command; a full channel drops it (a later one says as much).
    if (position.size() > worker::kMaxText) return;
    std::shared_ptr<WorkerProcess> w;
    {
        std::lock_guard lock(worker_mutex_);
        w = worker_;
    }
    if (w && w->alive()) w->send(Header{Op::acknowledged}, position, false);
}

CallResult IsolatedInstance::recover(std::string &marker) {
    std::lock_guard lock(exchange_mutex_);
    Header reply{};
    CallResult r = exchange(Header{Op::recover}, reply, false);
    if (r.ok() && !readable(reply.b)) {
        r.status = SLUICE_FATAL;
        r.message = "the worker's reply is malformed";
    }
    if (r.ok()) marker.assign(worker_->output().data(), reply.b);
    return r;
}

bool IsolatedInstance::sync_markers() {
    std::lock_guard lock(exchange_mutex_);
    Header reply{};
    return exchange(Header{Op::sync_markers}, reply, false).ok();
}

std::string IsolatedInstance::restart() {
    std::lock_guard lock(exchange_mutex_);
    const bool was_started = started_;
    started_ = false;
    std::string problem = launch();
    if (!problem.empty()) return problem;
    if (was_started) {
        Header reply{};
        CallResult r = exchange(Header{Op::start}, reply, false);
        if (!r.ok()) return "start: " + (r.death ? r.death->what : r.message);
        started_ = true;
    }
    if (!position_.empty() && features_.checkpoint) {
        // An extractor goes on from where the dead one had pulled to.
        if (!worker_->input().write(worker::kInputDataOffset, position_)) return "cannot write to shared memory";
        Header command{Op::restore};
        command.a = uint32_t(position_.size());
        Header reply{};
        CallResult r = exchange(command, reply, false);
        if (!r.ok()) return "restoring position " + position_ + ": " + (r.death ? r.death->what : r.message);
    }
    return {};
}

uint64_t IsolatedInstance::peak_rss_mb() const {
    return std::max(peak_rss_mb_, worker_ ? worker_->peak_rss_mb() : 0);
}

} // namespace sluice
