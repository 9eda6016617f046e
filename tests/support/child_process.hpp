// Runs the sluice binary as a child process with its output captured to
// files, so end-to-end tests see exactly what a user sees.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include <sys/types.h>

namespace sluice::test {

struct ProcessResult {
    int exit_code = -1; // 128+N when killed by signal N
    std::string out, err;
};

class ChildProcess {
public:
    // Starts `argv` (argv[0] is the program path).
    explicit ChildProcess(std::vector<std::string> argv);
    ~ChildProcess();
    ChildProcess(const ChildProcess &) = delete;
    ChildProcess &operator=(const ChildProcess &) = delete;

    void signal(int sig) const;
    pid_t pid() const { return pid_; }
    // Waits up to `timeout`; kills the child (SIGKILL) if it is still running
    // then, and returns exit_code -1.
    ProcessResult wait(std::chrono::milliseconds timeout = std::chrono::seconds(120));
    // What the child has written to stderr so far.
    std::string err_so_far() const;
    std::string out_so_far() const;
    // Waits until stderr contains `text` (true) or `timeout` passes (false):
    // for tests that must act once the process is really under way, however
    // slow the machine.
    bool wait_for_err(const std::string &text, std::chrono::milliseconds timeout = std::chrono::seconds(30)) const;

private:
    pid_t pid_ = -1;
    std::string out_path_, err_path_;
    bool reaped_ = false;
};

// The number right after `prefix` in the child's stderr, waiting for it
// (a port the system chose, as logged); -1 when it never comes.
int port_after(const ChildProcess &p, const std::string &prefix);

// The path of the sluice binary under test.
std::string sluice_binary();
// Runs `sluice args...` to completion.
ProcessResult run_sluice(const std::vector<std::string> &args,
                         std::chrono::milliseconds timeout = std::chrono::seconds(120));

// Whether this build runs under AddressSanitizer, whose shadow memory makes
// RSS figures meaningless (memory tests skip their bound then).
#if defined(__SANITIZE_ADDRESS__)
inline constexpr bool kAddressSanitized = true;
#else
inline constexpr bool kAddressSanitized = false;
#endif

// Runs `sluice args...` under GNU time and returns its peak RSS in MB (-1
// when time said nothing); the run's result goes to `result`.
int64_t sluice_peak_rss_mb(const std::vector<std::string> &args, ProcessResult &result);

} // namespace sluice::test
