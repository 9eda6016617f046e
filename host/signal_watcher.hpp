// Turns SIGINT/SIGTERM into a graceful stop, and SIGHUP into a live reload. The first signal asks the
// pipeline to stop extracting, drain what is in flight and flush; a second
// one exits at once with 128+signal. Signals are received synchronously on
// a dedicated thread (sigtimedwait), so call block_stop_signals() in main()
// before any thread starts: every thread then inherits the blocked mask.
#pragma once

#include "pipeline_control.hpp"

#include <atomic>
#include <functional>
#include <thread>

namespace sluice {

void block_stop_signals();

class SignalWatcher {
public:
    // `on_hup`: what SIGHUP does, on this watcher's thread (none: logged and
    // ignored).
    explicit SignalWatcher(PipelineControl &control, std::function<void()> on_hup = {});
    ~SignalWatcher();

private:
    void watch();
    PipelineControl &control_;
    std::function<void()> on_hup_;
    std::atomic<bool> done_{false};
    std::thread thread_;
};

} // namespace sluice
