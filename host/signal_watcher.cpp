#include "signal_watcher.hpp"

#include <spdlog/spdlog.h>

#include <csignal>
#include <cstring>
#include <ctime>
#include <pthread.h>
#include <unistd.h>

namespace sluice {

namespace {
sigset_t stop_signals() {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGHUP); // a reload, never the default "terminate"
    return set;
}
} // namespace

void block_stop_signals() {
    sigset_t set = stop_signals();
    pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

SignalWatcher::SignalWatcher(PipelineControl &control, std::function<void()> on_hup)
    : control_(control), on_hup_(std::move(on_hup)), thread_([this] { watch(); }) {}

namespace {
// A SIGHUP this process queues to the watcher with this value is not a
// reload but "stop watching" (so that a run ends without waiting out the
// watcher's timeout: that was 0-100 ms at the end of every run).
constexpr int kWakeValue = 0x51ce;
} // namespace

SignalWatcher::~SignalWatcher() {
    done_ = true;
    sigval value{};
    value.sival_int = kWakeValue;
    pthread_sigqueue(thread_.native_handle(), SIGHUP, value);
    thread_.join();
}

void SignalWatcher::watch() {
    sigset_t set = stop_signals();
    int received = 0;
    while (!done_) {
        timespec timeout{0, 100 * 1000 * 1000};
        siginfo_t info{};
        int sig = sigtimedwait(&set, &info, &timeout);
        if (sig <= 0) continue;
        if (sig == SIGHUP && info.si_code == SI_QUEUE && info.si_pid == getpid() && info.si_value.sival_int == kWakeValue)
            continue; // done_ is set
        if (sig == SIGHUP) {
            if (on_hup_) {
                spdlog::warn("received SIGHUP: reloading the manifest");
                on_hup_();
            } else {
                spdlog::warn("received SIGHUP: nothing to reload here, ignored");
            }
            continue;
        }
        if (++received == 1) {
            spdlog::warn("received {}: stopping extraction, draining and flushing (send it again to exit at once)",
                         sig == SIGINT ? "SIGINT" : "SIGTERM");
            control_.request_stop();
        } else {
            // Async-signal context is not an issue here (we are on a normal
            // thread), but nothing may wait any more: leave now.
            const char msg[] = "sluice: second signal, exiting without draining\n";
            ssize_t ignored = write(STDERR_FILENO, msg, sizeof msg - 1);
            (void)ignored;
            _exit(128 + sig);
        }
    }
}

} // namespace sluice
