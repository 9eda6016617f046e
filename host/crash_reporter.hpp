// What the host says when a plugin running in its own process kills it (a
// fatal signal: SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT). A thread that
// calls into a plugin names the call first (CallScope); the signal handler
// writes one async-signal-safe line naming that stage and plugin, and, when
// the run keeps state, a marker file so the next run can isolate the stage
// that crashed (crash_marker.hpp). Then the signal takes its default course.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace sluice::crash_reporter {

// "SIGSEGV" and the like, or null for a signal it does not name.
// Async-signal-safe.
const char *signal_name(int sig);

// The marker a crash leaves in the state directory.
struct Marker {
    std::string stage, plugin, signal;
    // The pull the batch in the crashing call came from, when it came from
    // one tracked pull (extractor empty otherwise).
    std::string extractor;
    uint32_t worker = 0;
    uint64_t pull = 0;
};
std::string marker_path(const std::string &state_dir);
// The marker at `path`, if there is one (and it can be read).
std::optional<Marker> read_marker(const std::string &path);

// The words the handler writes for calls into one stage, prepared ahead:
// a handler may not allocate.
struct Label {
    std::string stage;  // "stage 'clean' (transformer bad)"
    std::string marker; // the marker file's JSON without the signal
};
Label make_label(const std::string &stage_id, const char *kind, const std::string &plugin);

// [control] Installs the handlers (once per process).
void install();
// [control] Where the marker goes ("" for none). Set before stages run.
void set_marker_path(const std::string &path);

// [worker] The pull the batch about to be processed on this thread came
// from (extractor null: none, or more than one). `extractor` must outlive
// the call.
void set_current_pull(const char *extractor, uint32_t worker, uint64_t pull);

// Names the plugin call this thread is in, for as long as it lives.
class CallScope {
public:
    CallScope(const Label *label, const char *call);
    ~CallScope();
    CallScope(const CallScope &) = delete;
    CallScope &operator=(const CallScope &) = delete;

private:
    const Label *previous_label_;
    const char *previous_call_;
};

} // namespace sluice::crash_reporter
