// One `sluice-worker` process as the host holds it: started with its
// channel and shared regions, watched while a call runs (its memory, the
// time limit, its death), killed and reaped. Knows nothing of plugins:
// isolated_instance.hpp speaks the protocol over it.
#pragma once

#include "stage_instance.hpp"
#include "worker_protocol.hpp"

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>

namespace sluice {

struct WorkerLimits {
    uint32_t memory_limit_mb = 0; // 0: none
    uint32_t timeout_ms = 0;      // per call; 0: none
};

class WorkerProcess {
public:
    ~WorkerProcess(); // kills it if still running

    // Starts the worker executable. "" or why not.
    std::string spawn(const std::string &stage_id);

    worker::SharedRegion &input() { return input_; }
    worker::SharedRegion &output() { return output_; }
    worker::SharedFlags &flags() { return *reinterpret_cast<worker::SharedFlags *>(input_.data()); }

    bool send(const worker::Header &h, std::string_view text = {}, bool wait = true);
    // Waits for the reply to the command just sent, handing log lines and
    // counters to `on_message` as they come. While waiting, `poll` runs
    // every few milliseconds (to pass the stop flag on); when it returns
    // false the worker is killed (the run is aborting).
    // every few milliseconds (to pass the stop flag on). A death (or a
    // limit that killed the worker) is returned instead of the reply.
    std::optional<WorkerDeath> await_reply(const WorkerLimits &limits, worker::Header &reply, std::string &text,
                                           const std::function<void(const worker::Header &, const std::string &)> &on_message,
                                           const std::function<bool()> &poll);
    // Asks it to quit, then makes sure it is gone.
    void shut_down();
    bool alive() const { return pid_ > 0; }
    uint64_t peak_rss_mb() const { return (peak_rss_kb_ + 1023) / 1024; }

    // The worker executable: $SLUICE_WORKER, else `sluice-worker` beside this
    // program, else the one in the build tree.
    static std::string executable();

private:
    WorkerDeath reap(std::optional<WorkerDeath> known);
    uint64_t private_rss_kb() const;

    std::atomic<pid_t> pid_{-1};
    int channel_ = -1;
    worker::SharedRegion input_, output_;
    uint64_t peak_rss_kb_ = 0;
};

} // namespace sluice
