#include "crash_reporter.hpp"

#include <boost/json.hpp>

#include <atomic>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <mutex>
#include <unistd.h>

namespace sluice::crash_reporter {

namespace {

thread_local const Label *current_label = nullptr;
thread_local const char *current_call = nullptr;
thread_local const char *current_extractor = nullptr; // the pull the batch in the call came from
thread_local uint32_t current_worker = 0;
thread_local uint64_t current_pull = 0;

// The marker path lives in a fixed buffer: the handler reads it.
char marker_file[4096];
std::atomic<bool> marker_set{false};

const char *name_of(int sig) {
    const char *name = signal_name(sig);
    return name ? name : "a fatal signal";
}

void put(int fd, const char *s) {
    size_t n = std::strlen(s);
    while (n > 0) {
        ssize_t w = ::write(fd, s, n);
        if (w <= 0) return;
        s += w;
        n -= size_t(w);
    }
}

void put_number(int fd, uint64_t n) {
    char digits[24];
    int i = sizeof digits;
    digits[--i] = 0;
    do digits[--i] = char('0' + n % 10);
    while ((n /= 10) > 0 && i > 0);
    put(fd, digits + i);
}

void on_fatal_signal(int sig) {
    const Label *label = current_label;
    if (label) {
        put(2, "sluice: fatal ");
        put(2, name_of(sig));
        put(2, " in ");
        put(2, label->stage.c_str());
        put(2, " during ");
        put(2, current_call ? current_call : "a call");
        put(2, "; the plugin crashed the host (\"isolation\": \"process\" contains it)\n");
        if (marker_set.load()) {
            int fd = ::open(marker_file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
            if (fd >= 0) {
                put(fd, label->marker.c_str());
                put(fd, name_of(sig));
                put(fd, "\"");
                if (current_extractor) {
                    // Stage ids are letters, digits, '_' and '-': no escaping.
                    put(fd, ",\"extractor\":\"");
                    put(fd, current_extractor);
                    put(fd, "\",\"worker\":");
                    put_number(fd, current_worker);
                    put(fd, ",\"pull\":");
                    put_number(fd, current_pull);
                }
                put(fd, "}\n");
                ::fsync(fd);
                ::close(fd);
            }
        }
    } else {
        put(2, "sluice: fatal ");
        put(2, name_of(sig));
        put(2, " outside any plugin call\n");
    }
    // The default action: the process dies of the same signal.
    ::signal(sig, SIG_DFL);
    ::raise(sig);
}

} // namespace

const char *signal_name(int sig) {
    switch (sig) {
    case SIGSEGV: return "SIGSEGV";
    case SIGBUS: return "SIGBUS";
    case SIGFPE: return "SIGFPE";
    case SIGILL: return "SIGILL";
    case SIGABRT: return "SIGABRT";
    case SIGKILL: return "SIGKILL";
    case SIGTERM: return "SIGTERM";
    default: return nullptr;
    }
}

std::string marker_path(const std::string &state_dir) { return state_dir + "/crashed-stage.json"; }

std::optional<Marker> read_marker(const std::string &path) {
    std::ifstream in(path);
    if (!in) return std::nullopt;
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    boost::system::error_code ec;
    boost::json::value v = boost::json::parse(text, ec);
    if (ec || !v.is_object()) return std::nullopt;
    Marker m;
    const boost::json::object &o = v.as_object();
    for (auto [key, field] : {std::pair{"stage", &m.stage}, {"plugin", &m.plugin}, {"signal", &m.signal},
                              {"extractor", &m.extractor}})
        if (const auto *s = o.if_contains(key); s && s->is_string()) *field = s->as_string();
    if (const auto *w = o.if_contains("worker"); w && w->is_int64()) m.worker = uint32_t(w->as_int64());
    if (const auto *p = o.if_contains("pull"); p && p->is_int64()) m.pull = uint64_t(p->as_int64());
    if (m.stage.empty()) return std::nullopt;
    return m;
}

Label make_label(const std::string &stage_id, const char *kind, const std::string &plugin) {
    Label l;
    l.stage = "stage '" + stage_id + "' (" + kind + " " + plugin + ")";
    l.marker = "{\"stage\":" + boost::json::serialize(boost::json::string(stage_id)) +
               ",\"plugin\":" + boost::json::serialize(boost::json::string(plugin)) + ",\"signal\":\"";
    return l;
}

void install() {
    static std::once_flag once;
    std::call_once(once, [] {
        struct sigaction sa {};
        sa.sa_handler = &on_fatal_signal;
        sigemptyset(&sa.sa_mask);
        sa.sa_flags = SA_RESETHAND | SA_NODEFER;
        for (int sig : {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT}) ::sigaction(sig, &sa, nullptr);
        // A plugin that calls exit() ends the host from inside its call:
        // the handlers run on its thread, which still names the call.
        std::atexit([] {
            if (const Label *label = current_label) {
                put(2, "sluice: ");
                put(2, label->stage.c_str());
                put(2, " ended the process (exit) during ");
                put(2, current_call ? current_call : "a call");
                put(2, "; nothing after it was flushed (\"isolation\": \"process\" contains it)\n");
            }
        });
    });
}

void set_marker_path(const std::string &path) {
    marker_set = false;
    if (path.empty() || path.size() >= sizeof marker_file) return;
    std::memcpy(marker_file, path.c_str(), path.size() + 1);
    marker_set = true;
}

void set_current_pull(const char *extractor, uint32_t worker, uint64_t pull) {
    current_extractor = extractor;
    current_worker = worker;
    current_pull = pull;
}

CallScope::CallScope(const Label *label, const char *call)
    : previous_label_(current_label), previous_call_(current_call) {
    current_label = label;
    current_call = call;
}

CallScope::~CallScope() {
    current_label = previous_label_;
    current_call = previous_call_;
}

} // namespace sluice::crash_reporter
