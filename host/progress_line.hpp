// What a long run is doing while it runs. On a terminal: one line on stderr
// redrawn twice a second (elapsed, extracted, loaded, rejected, failed,
// records/s now, the busiest stage); log lines clear it first. Not on a
// terminal (a service, a scheduler's log): a one-line summary at info level
// every `summary_interval`. Nothing with --quiet.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <thread>

namespace sluice {

class Pipeline;

class ProgressLine {
public:
    enum class Mode { terminal, log_summary };
    ProgressLine(const Pipeline &pipeline, Mode mode,
                 std::chrono::milliseconds summary_interval = std::chrono::seconds(60));
    ~ProgressLine(); // stops, and clears the terminal line

    // The line for the counters now, given the previous reading; public for
    // tests. `busiest` is the stage with the most plugin time since then.
    struct Reading {
        double seconds = 0;
        uint64_t extracted = 0, loaded = 0, rejected = 0, failed = 0;
        std::map<std::string, double> busy_seconds; // per stage
    };
    static Reading read(const Pipeline &pipeline, double seconds);
    static std::string render(const Reading &now, const Reading &before);

private:
    void loop();

    const Pipeline &pipeline_;
    const Mode mode_;
    const std::chrono::milliseconds interval_;
    std::mutex mutex_;
    std::condition_variable wake_;
    bool stop_ = false;
    bool drawn_ = false;
    std::thread thread_;
};

} // namespace sluice
