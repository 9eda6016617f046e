// sluice-worker: runs one instance of a stage plugin for an isolated stage
// ("isolation": "process"). The host starts it with a control channel and
// two shared-memory regions on fixed descriptors (worker_protocol.hpp),
// sends `init` (which library, which stage, the config), then calls. The
// plugin sees the same ABI as in the host: the same sluice_host services
// (forwarded to the host), emitters that answer as the host's do (their
// calls are logged and replayed by the host).
#include "call_log.hpp"
#include "file_sha256.hpp"
#include "metrics_declaration.hpp"
#include "plugin_trust.hpp"
#include "worker_protocol.hpp"

#include <sluice/plugin.h>

#include <dlfcn.h>
#include <signal.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

using namespace sluice;
using namespace sluice::worker;

namespace {

SharedRegion input, output;
SharedFlags *flags = nullptr;
uint32_t log_level = SLUICE_LOG_INFO;
const sluice_stage_descriptor *desc = nullptr;
void *handle = nullptr;
uint32_t output_count = 1;
const sluice_checkpoint_ext *checkpoint = nullptr;
const sluice_acknowledged_ext *acknowledged = nullptr;
const sluice_exactly_once_ext *exactly_once = nullptr;
// A loader whose commits overlap its next call (sluice.settle/1) is settled
// after every call here: the host cannot hold the acknowledgements of a
// worker that may die between two calls.
const sluice_settle_ext *settle = nullptr;

void host_log(const sluice_host *, sluice_log_level level, const char *message, size_t len) {
    if (!message || uint32_t(level) < log_level) return;
    Header h{Op::log};
    h.a = uint32_t(level);
    send_message(kChannelFd, h, std::string_view(message, len));
}

int32_t host_log_enabled(const sluice_host *, sluice_log_level level) { return uint32_t(level) >= log_level; }

void host_counter_add(const sluice_host *, const char *name, int64_t delta) {
    if (!name || !*name) return;
    Header h{Op::counter};
    h.value = delta;
    send_message(kChannelFd, h, name);
}

int32_t host_stop_requested(const sluice_host *) { return flags && flags->stop_requested.load() ? 1 : 0; }

const void *host_get_extension(const sluice_host *, const char *id) {
    if (id && std::strcmp(id, SLUICE_EXT_DROP) == 0) return CallRecorder::drop_extension();
    return nullptr;
}

sluice_host host_table = {sizeof(sluice_host), SLUICE_ABI_MAJOR, SLUICE_ABI_MINOR, nullptr, &host_log,
                          &host_log_enabled, &host_counter_add, &host_stop_requested, &host_get_extension};

template <class Ext> const Ext *extension(const char *id) {
    const void *p = desc->get_extension ? desc->get_extension(handle, id) : nullptr;
    const auto *e = static_cast<const Ext *>(p);
    return e && e->struct_size >= sizeof(Ext) ? e : nullptr;
}

std::string plugin_message() {
    const char *m = desc && desc->last_error ? desc->last_error(handle) : nullptr;
    return m && *m ? std::string(m) : std::string("(the plugin gave no message)");
}

void reply(sluice_status status, std::string_view text = {}, uint32_t a = 0, uint32_t b = 0, uint64_t out_bytes = 0) {
    Header h{Op::reply};
    h.status = status;
    h.a = a;
    h.b = b;
    h.out_bytes = out_bytes;
    if (!send_message(kChannelFd, h, text)) _exit(0); // the host is gone
}

// Replies to a call: its log (and `extra` after it) in the output region.
void reply_call(sluice_status status, const std::string &log, const std::string &extra = {}, uint32_t a = 0) {
    if (!output.write(0, log) || !output.write(log.size(), extra)) {
        reply(SLUICE_FATAL, "the call's results do not fit in shared memory");
        return;
    }
    reply(status, status == SLUICE_OK ? std::string_view() : std::string_view(plugin_message()), a,
          uint32_t(extra.size()), log.size());
}

void init(std::string_view bytes) {
    InitArgs args;
    if (!args.decode(bytes)) return reply(SLUICE_FATAL, "malformed init");
    log_level = args.log_level;
    // The host checked the file; it is checked again here, just before it
    // is loaded into this process.
    if (args.check_trust)
        if (std::string problem = untrusted_plugin_file(args.library); !problem.empty())
            return reply(SLUICE_FATAL, problem);
    if (!args.sha256.empty()) {
        std::string actual;
        try {
            actual = file_sha256(args.library);
        } catch (const std::runtime_error &e) {
            return reply(SLUICE_FATAL, e.what());
        }
        if (actual != args.sha256)
            return reply(SLUICE_FATAL, args.library + ": its sha256 is " + actual + ", but the manifest pins " + args.sha256);
    }
    void *lib = ::dlopen(args.library.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!lib) return reply(SLUICE_FATAL, std::string("cannot load ") + args.library + ": " + ::dlerror());
    using EntryFn = const sluice_entry *(*)();
    auto fn = reinterpret_cast<EntryFn>(::dlsym(lib, "sluice_plugin_entry"));
    const sluice_entry *entry = fn ? fn() : nullptr;
    if (!entry) return reply(SLUICE_FATAL, args.library + ": no sluice_plugin_entry");
    for (uint32_t i = 0; i < entry->stage_count; ++i) {
        const sluice_stage_descriptor *d = entry->stages[i];
        if (d && d->kind == sluice_kind(args.kind) && d->name && args.plugin == d->name) desc = d;
    }
    if (!desc) return reply(SLUICE_FATAL, args.library + ": no stage " + args.plugin);
    char error[1024] = {0};
    sluice_create_args c{};
    c.struct_size = sizeof c;
    c.worker_index = args.worker_index;
    c.worker_count = args.worker_count;
    c.host = &host_table;
    c.stage_id = args.stage_id.c_str();
    c.config_json = args.config_json.c_str();
    c.config_len = args.config_json.size();
    c.base_dir = args.base_dir.c_str();
    c.error = error;
    c.error_size = sizeof error;
    if (desc->create(&c, &handle) != SLUICE_OK) {
        desc = nullptr;
        return reply(SLUICE_ERROR, error[0] ? error : "create failed (the plugin gave no message)");
    }
    uint32_t features = 0;
    const auto *cp = extension<sluice_checkpoint_ext>(SLUICE_EXT_CHECKPOINT);
    checkpoint = cp && cp->position && cp->restore ? cp : nullptr;
    const auto *ack = extension<sluice_acknowledged_ext>(SLUICE_EXT_ACKNOWLEDGED);
    acknowledged = ack && ack->acknowledged ? ack : nullptr;
    const auto *once = extension<sluice_exactly_once_ext>(SLUICE_EXT_EXACTLY_ONCE);
    exactly_once = once && once->recover && once->process_marked ? once : nullptr;
    if (checkpoint) features |= kHasCheckpoint;
    if (acknowledged) features |= kHasAcknowledged;
    if (exactly_once) features |= kHasExactlyOnce;
    if (exactly_once && exactly_once->sync_markers) features |= kHasSyncMarkers;
    const auto *st = extension<sluice_settle_ext>(SLUICE_EXT_SETTLE);
    settle = st && st->settle ? st : nullptr;
    if (const auto *d = extension<sluice_delivery_ext>(SLUICE_EXT_DELIVERY); d && d->durable_on_process) {
        features |= kHasDelivery;
        if (d->durable_on_process(handle)) features |= kDurableOnProcess;
    }
    output_count = desc->output_count ? desc->output_count : 1;
    if (desc->capabilities & SLUICE_CAP_CONFIG_OUTPUTS)
        if (const auto *o = extension<sluice_outputs_ext>(SLUICE_EXT_OUTPUTS); o && o->count)
            output_count = o->count(handle);
    // The declared metrics travel as bytes in the output region.
    const std::string metrics = MetricsDeclaration::from(extension<sluice_metrics_ext>(SLUICE_EXT_METRICS)).encode();
    if (!output.write(0, metrics)) return reply(SLUICE_FATAL, "cannot write to shared memory");
    reply(SLUICE_OK, {}, features, output_count, metrics.size());
}

void process(const Header &h) {
    const char *base = input.data() + kInputDataOffset;
    const size_t records_len = size_t(h.out_bytes); // the host's byte count for the batch
    RecordsView records;
    std::string problem;
    if (!records.decode(std::string_view(base, records_len), problem)) return reply(SLUICE_FATAL, problem);
    std::string log;
    CallRecorder recorder(log, output_count, records.data(), records.size());
    sluice_status s;
    if (h.b > 0 && exactly_once)
        s = exactly_once->process_marked(handle, records.data(), records.size(), recorder.raw(), base + records_len,
                                         h.b);
    else
        s = desc->process(handle, records.data(), records.size(), recorder.raw());
    if (s == SLUICE_OK && settle) s = settle->settle(handle);
    reply_call(s, log);
}

void serve() {
    Header h{};
    std::string text;
    while (receive_message(kChannelFd, h, text)) {
        switch (h.op) {
        case Op::init: init(std::string_view(input.data() + kInputDataOffset, h.out_bytes)); break;
        case Op::start: {
            sluice_status s = desc->start ? desc->start(handle) : SLUICE_OK;
            reply(s, s == SLUICE_OK ? std::string() : plugin_message());
            break;
        }
        case Op::stop: {
            sluice_status s = desc->stop ? desc->stop(handle) : SLUICE_OK;
            reply(s, s == SLUICE_OK ? std::string() : plugin_message());
            break;
        }
        case Op::pull: {
            std::string log;
            CallRecorder recorder(log, output_count, nullptr, 0);
            int32_t end = 0;
            sluice_status s = desc->pull(handle, recorder.raw(), h.a, &end);
            const char *pos = s == SLUICE_OK && checkpoint ? checkpoint->position(handle) : nullptr;
            reply_call(s, log, pos ? pos : "", end ? 1 : 0);
            break;
        }
        case Op::process: process(h); break;
        case Op::flush: {
            std::string log;
            CallRecorder recorder(log, output_count, nullptr, 0);
            sluice_status s = desc->flush ? desc->flush(handle, recorder.raw()) : SLUICE_OK;
            reply_call(s, log);
            break;
        }
        case Op::restore: {
            sluice_status s = checkpoint ? checkpoint->restore(handle, input.data() + kInputDataOffset, h.a) : SLUICE_ERROR;
            reply(s, s == SLUICE_OK ? std::string() : plugin_message());
            break;
        }
        case Op::acknowledged:
            if (acknowledged) acknowledged->acknowledged(handle, text.data(), text.size());
            break;
        case Op::recover: {
            const char *marker = nullptr;
            sluice_status s = exactly_once ? exactly_once->recover(handle, &marker) : SLUICE_ERROR;
            std::string m = marker ? marker : "";
            if (!output.write(0, m)) s = SLUICE_FATAL;
            reply(s, s == SLUICE_OK ? std::string() : plugin_message(), 0, uint32_t(m.size()));
            break;
        }
        case Op::sync_markers: {
            sluice_status s = exactly_once && exactly_once->sync_markers ? exactly_once->sync_markers(handle) : SLUICE_OK;
            reply(s, s == SLUICE_OK ? std::string() : plugin_message());
            break;
        }
        case Op::outputs: {
            const auto *o = extension<sluice_outputs_ext>(SLUICE_EXT_OUTPUTS);
            std::string names;
            uint32_t n = o && o->count && o->name ? o->count(handle) : 0;
            for (uint32_t i = 0; i < n; ++i) {
                const char *name = o->name(handle, i);
                names += name ? name : "";
                names += '\0';
            }
            output.write(0, names);
            reply(SLUICE_OK, {}, n, 0, names.size());
            break;
        }
        case Op::resources: {
            const auto *r = extension<sluice_resources_ext>(SLUICE_EXT_RESOURCES);
            const char *json = r && r->resources ? r->resources(handle) : nullptr;
            std::string j = json ? json : "";
            output.write(0, j);
            reply(SLUICE_OK, {}, 0, uint32_t(j.size()));
            break;
        }
        case Op::preflight: {
            const auto *p = extension<sluice_preflight_ext>(SLUICE_EXT_PREFLIGHT);
            const char *problems = p && p->check ? p->check(handle) : nullptr;
            std::string text = problems ? problems : "";
            output.write(0, text);
            reply(SLUICE_OK, {}, 0, uint32_t(text.size()));
            break;
        }
        case Op::quit:
            if (desc && handle) desc->destroy(handle);
            return;
        default: reply(SLUICE_FATAL, "unknown command"); break;
        }
    }
}

} // namespace

// Under the sanitizer presets: a plugin's crash must end the worker with its
// signal, as in a release build (not with ASan's report and exit 1), and a
// plugin's leaks are its own.
extern "C" const char *__asan_default_options() {
    return "handle_segv=0:handle_sigbus=0:handle_sigfpe=0:handle_sigill=0:handle_abort=0:detect_leaks=0";
}
extern "C" const char *__tsan_default_options() {
    return "handle_segv=0:handle_sigbus=0:handle_sigfpe=0:handle_sigill=0:handle_abort=0";
}

int main(int argc, char **argv) {
    // Die with the host at once: SIGKILL when it goes (the host starts every
    // worker from one thread that lives as long as it does), and, should
    // that have raced with the host's end, a watch on the parent.
    const pid_t host = argc > 1 ? pid_t(std::atol(argv[1])) : ::getppid();
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != host) return 1;
    std::thread([host] {
        for (;;) {
            if (::getppid() != host) _exit(1);
            ::usleep(200 * 1000);
        }
    }).detach();
    // Terminal signals are the host's to handle.
    ::signal(SIGINT, SIG_IGN);
    // A plugin's code gains nothing by executing a setuid program or one
    // with file capabilities: no new privileges, for good (exec'd children
    // inherit it).
    ::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
    std::string problem = input.attach(kInputFd);
    if (problem.empty()) problem = output.attach(kOutputFd);
    if (!problem.empty()) {
        std::fprintf(stderr, "sluice-worker: %s\n", problem.c_str());
        return 1;
    }
    flags = reinterpret_cast<SharedFlags *>(input.data());
    serve();
    return 0;
}
