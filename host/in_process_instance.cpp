#include "in_process_instance.hpp"

#include "call_log.hpp"
#include "emitter.hpp"

#include <spdlog/spdlog.h>

#include <condition_variable>
#include <mutex>
#include <thread>

namespace sluice {

namespace {

template <class Ext> const Ext *extension(const sluice_stage_descriptor *desc, void *handle, const char *id) {
    const void *ext = desc->get_extension ? desc->get_extension(handle, id) : nullptr;
    const auto *e = static_cast<const Ext *>(ext);
    return e && e->struct_size >= sizeof(Ext) ? e : nullptr;
}

} // namespace

InProcessInstance::InProcessInstance(const InstanceSetup &setup, std::shared_ptr<std::atomic<int>> abandoned)
    : setup_(setup), abandoned_(std::move(abandoned)) {}

std::unique_ptr<InProcessInstance> InProcessInstance::create(const InstanceSetup &setup,
                                                             std::shared_ptr<std::atomic<int>> abandoned,
                                                             std::string &problem) {
    std::unique_ptr<InProcessInstance> inst(new InProcessInstance(setup, std::move(abandoned)));
    problem = inst->make();
    if (!problem.empty()) return nullptr;
    return inst;
}

std::string InProcessInstance::make() {
    char error[1024] = {0};
    sluice_create_args args{};
    args.struct_size = sizeof args;
    args.worker_index = setup_.worker_index;
    args.worker_count = setup_.worker_count;
    args.host = setup_.host;
    args.stage_id = setup_.stage_id.c_str();
    args.config_json = setup_.config_json.c_str();
    args.config_len = setup_.config_json.size();
    args.base_dir = setup_.base_dir.c_str();
    args.error = error;
    args.error_size = sizeof error;
    void *handle = nullptr;
    sluice_status s;
    {
        crash_reporter::CallScope scope(setup_.label, "create");
        s = setup_.desc->create(&args, &handle);
    }
    if (s != SLUICE_OK)
        return error[0] ? std::string(error) : std::string("create failed (the plugin gave no message)");
    handle_ = handle;
    created_ = true;
    started_ = false;
    const auto *cp = extension<sluice_checkpoint_ext>(setup_.desc, handle, SLUICE_EXT_CHECKPOINT);
    checkpoint_ = cp && cp->position && cp->restore ? cp : nullptr;
    const auto *ack = extension<sluice_acknowledged_ext>(setup_.desc, handle, SLUICE_EXT_ACKNOWLEDGED);
    acknowledged_ = ack && ack->acknowledged ? ack : nullptr;
    const auto *once = extension<sluice_exactly_once_ext>(setup_.desc, handle, SLUICE_EXT_EXACTLY_ONCE);
    exactly_once_ = once && once->recover && once->process_marked ? once : nullptr;
    features_ = InstanceFeatures{};
    features_.checkpoint = checkpoint_ != nullptr;
    features_.acknowledged = acknowledged_ != nullptr;
    features_.exactly_once = exactly_once_ != nullptr;
    features_.sync_markers = exactly_once_ && exactly_once_->sync_markers;
    const auto *delivery = extension<sluice_delivery_ext>(setup_.desc, handle, SLUICE_EXT_DELIVERY);
    if (delivery && delivery->durable_on_process) features_.durable_on_process = delivery->durable_on_process(handle) != 0;
    const auto *settle = extension<sluice_settle_ext>(setup_.desc, handle, SLUICE_EXT_SETTLE);
    settle_ = settle && settle->settle && features_.durable_on_process.value_or(false) ? settle : nullptr;
    features_.settle = settle_ != nullptr;
    features_.metrics = MetricsDeclaration::from(extension<sluice_metrics_ext>(setup_.desc, handle, SLUICE_EXT_METRICS));
    return {};
}

InProcessInstance::~InProcessInstance() {
    stop();
    if (created_) setup_.desc->destroy(handle_);
    created_ = false;
}

std::string InProcessInstance::message() const {
    const char *m = setup_.desc->last_error ? setup_.desc->last_error(handle_) : nullptr;
    return m && *m ? std::string(m) : std::string("(the plugin gave no message)");
}

std::string InProcessInstance::start() {
    if (!setup_.desc->start) {
        started_ = true;
        return {};
    }
    crash_reporter::CallScope scope(setup_.label, "start");
    if (setup_.desc->start(handle_) != SLUICE_OK) return message();
    started_ = true;
    return {};
}

void InProcessInstance::stop() {
    if (!started_) return;
    started_ = false;
    if (!setup_.desc->stop) return;
    crash_reporter::CallScope scope(setup_.label, "stop");
    if (setup_.desc->stop(handle_) != SLUICE_OK) spdlog::warn("[{}] stop failed: {}", setup_.stage_id, message());
}

std::vector<std::string> InProcessInstance::config_outputs(std::string &problem) {
    const auto *outputs = extension<sluice_outputs_ext>(setup_.desc, handle_, SLUICE_EXT_OUTPUTS);
    if (!outputs || !outputs->count || !outputs->name) {
        problem = "the plugin declares config-chosen outputs but does not provide " SLUICE_EXT_OUTPUTS;
        return {};
    }
    std::vector<std::string> names;
    for (uint32_t i = 0; i < outputs->count(handle_); ++i) {
        const char *n = outputs->name(handle_, i);
        if (!n || !*n) {
            problem = "output " + std::to_string(i) + " has no name";
            return {};
        }
        names.emplace_back(n);
    }
    if (names.empty()) problem = "the plugin's config gives it no output";
    return names;
}

std::string InProcessInstance::resources() {
    const auto *ext = extension<sluice_resources_ext>(setup_.desc, handle_, SLUICE_EXT_RESOURCES);
    if (!ext || !ext->resources) return {};
    const char *json = ext->resources(handle_);
    return json ? std::string(json) : std::string();
}

std::string InProcessInstance::preflight() {
    const auto *ext = extension<sluice_preflight_ext>(setup_.desc, handle_, SLUICE_EXT_PREFLIGHT);
    if (!ext || !ext->check) return {};
    const char *problems = ext->check(handle_);
    return problems ? std::string(problems) : std::string();
}

CallResult InProcessInstance::pull(BatchEmitter &out, uint32_t max_records, bool &end_of_input) {
    int32_t end = 0;
    CallResult r;
    {
        crash_reporter::CallScope scope(setup_.label, "pull");
        r.status = setup_.desc->pull(handle_, out.raw(), max_records, &end);
    }
    end_of_input = end != 0;
    if (r.status != SLUICE_OK) r.message = message();
    return r;
}

CallResult InProcessInstance::process(const sluice_record *records, uint32_t count, BatchEmitter &out,
                                      const std::string *marker) {
    if (setup_.timeout_ms) return process_with_time_limit(records, count, out, marker);
    CallResult r;
    {
        crash_reporter::CallScope scope(setup_.label, "process");
        r.status = marker ? exactly_once_->process_marked(handle_, records, count, out.raw(), marker->data(),
                                                         marker->size())
                          : setup_.desc->process(handle_, records, count, out.raw());
    }
    if (r.status != SLUICE_OK) r.message = message();
    return r;
}

CallResult InProcessInstance::process_with_time_limit(const sluice_record *records, uint32_t count,
                                                      BatchEmitter &out, const std::string *marker) {
    // The call runs on its own thread, on its own copy of the records, into
    // a call log: an abandoned call can never touch what this worker goes
    // on with.
    struct Call {
        std::mutex mutex;
        std::condition_variable cv;
        bool done = false, abandoned = false;
        std::string input_bytes, log, marker;
        RecordsView input;
        sluice_status status = SLUICE_OK;
        std::string message;
    };
    auto call = std::make_shared<Call>();
    encode_records(call->input_bytes, records, count);
    std::string problem;
    call->input.decode(call->input_bytes, problem);
    if (marker) call->marker = *marker;
    const bool marked = marker != nullptr;
    const uint32_t outputs = out.output_count();
    auto abandoned_counter = abandoned_;
    const InstanceSetup setup = setup_;
    const sluice_exactly_once_ext *once = exactly_once_;
    void *handle = handle_;
    const bool started = started_;
    std::thread thread([call, setup, once, handle, started, marked, outputs, abandoned_counter] {
        CallRecorder recorder(call->log, outputs, call->input.data(), call->input.size());
        sluice_status s;
        {
            crash_reporter::CallScope scope(setup.label, "process");
            s = marked ? once->process_marked(handle, call->input.data(), call->input.size(), recorder.raw(),
                                              call->marker.data(), call->marker.size())
                       : setup.desc->process(handle, call->input.data(), call->input.size(), recorder.raw());
        }
        const char *m = s != SLUICE_OK && setup.desc->last_error ? setup.desc->last_error(handle) : nullptr;
        bool abandoned;
        {
            std::lock_guard lock(call->mutex);
            call->status = s;
            call->message = m && *m ? m : "(the plugin gave no message)";
            call->done = true;
            abandoned = call->abandoned;
        }
        call->cv.notify_all();
        if (abandoned) {
            // Nobody else holds this instance any more.
            if (started && setup.desc->stop) setup.desc->stop(handle);
            setup.desc->destroy(handle);
            abandoned_counter->fetch_sub(1);
        }
    });
    std::unique_lock lock(call->mutex);
    const bool done =
        call->cv.wait_for(lock, std::chrono::milliseconds(setup_.timeout_ms), [&] { return call->done; });
    if (!done) {
        call->abandoned = true;
        abandoned_->fetch_add(1);
        lock.unlock();
        thread.detach();
        CallResult r;
        r.message = "timed out after " + std::to_string(setup_.timeout_ms) + " ms";
        // The abandoned call's thread destroys the old instance; this one
        // goes on with a fresh one.
        created_ = started_ = false;
        handle_ = nullptr;
        if (!features_.durable_on_process.value_or(setup_.kind != SLUICE_KIND_LOADER) || settle_) {
            // The instance held records from earlier calls that only its
            // flush would have made durable: they are lost with it.
            r.status = SLUICE_FATAL;
            r.message += settle_ ? " in a loader still committing its last call's records; whether they were "
                                   "stored cannot be known, so none of them is acknowledged"
                                 : " in a stage that keeps records until it flushes; the records it held cannot be saved";
            return r;
        }
        spdlog::warn("[{}] a call {}; replacing the instance (the old one is destroyed when the call returns)",
                     setup_.stage_id, r.message);
        std::string problem2 = make();
        if (problem2.empty()) problem2 = start();
        if (!problem2.empty()) {
            r.status = SLUICE_FATAL;
            r.message += "; a new instance could not be made: " + problem2;
            return r;
        }
        r.status = SLUICE_ERROR;
        return r;
    }
    lock.unlock();
    thread.join();
    CallResult r;
    r.status = call->status;
    if (r.status != SLUICE_OK) {
        r.message = call->message;
        return r;
    }
    std::string bad;
    if (!replay_calls(call->log, out, records, count, bad)) {
        r.status = SLUICE_FATAL;
        r.message = bad;
    }
    return r;
}

CallResult InProcessInstance::flush(BatchEmitter &out) {
    CallResult r;
    if (!setup_.desc->flush) return r;
    {
        crash_reporter::CallScope scope(setup_.label, "flush");
        r.status = setup_.desc->flush(handle_, out.raw());
    }
    if (r.status != SLUICE_OK) r.message = message();
    return r;
}

CallResult InProcessInstance::settle() {
    CallResult r;
    if (!settle_) return r;
    {
        crash_reporter::CallScope scope(setup_.label, "settle");
        r.status = settle_->settle(handle_);
    }
    if (r.status != SLUICE_OK) r.message = message();
    return r;
}

std::string InProcessInstance::position() {
    const char *pos = checkpoint_ ? checkpoint_->position(handle_) : nullptr;
    return pos ? std::string(pos) : std::string();
}

std::string InProcessInstance::restore(const std::string &position) {
    if (!checkpoint_) return "the plugin cannot restore a position";
    if (checkpoint_->restore(handle_, position.data(), position.size()) != SLUICE_OK) return message();
    return {};
}

void InProcessInstance::acknowledged(const std::string &position) {
    if (acknowledged_) acknowledged_->acknowledged(handle_, position.data(), position.size());
}

CallResult InProcessInstance::recover(std::string &marker) {
    CallResult r;
    const char *text = nullptr;
    r.status = exactly_once_ ? exactly_once_->recover(handle_, &text) : SLUICE_ERROR;
    if (r.status != SLUICE_OK) r.message = exactly_once_ ? message() : "the plugin has no " SLUICE_EXT_EXACTLY_ONCE;
    marker = text ? text : "";
    return r;
}

bool InProcessInstance::sync_markers() {
    if (!exactly_once_ || !exactly_once_->sync_markers) return true;
    return exactly_once_->sync_markers(handle_) == SLUICE_OK;
}

} // namespace sluice
