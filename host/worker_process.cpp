#include "worker_process.hpp"

#include "crash_reporter.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>

extern char **environ;

namespace sluice {

namespace {

using Clock = std::chrono::steady_clock;
// How often a running call is looked at (memory, time, stop flag).
constexpr int kWatchMs = 10;

std::string signal_name(int sig) {
    if (const char *name = crash_reporter::signal_name(sig)) return name;
    return "signal " + std::to_string(sig);
}

// Workers die with the host: each asks for SIGKILL when its parent goes
// (PR_SET_PDEATHSIG). The kernel means the parent *thread*, so every worker
// is started by this one thread, which lives as long as the process.
class Spawner {
public:
    static Spawner &instance() {
        static Spawner *s = new Spawner; // never destroyed: its thread must outlive every worker
        return *s;
    }
    // Runs `job` on the spawner thread and waits for it.
    void run(const std::function<void()> &job) {
        std::unique_lock lock(mutex_);
        const uint64_t ticket = ++posted_;
        jobs_.push_back(&job);
        wake_.notify_all();
        done_cv_.wait(lock, [&] { return done_ >= ticket; });
    }

private:
    Spawner() {
        std::thread([this] {
            std::unique_lock lock(mutex_);
            for (;;) {
                wake_.wait(lock, [&] { return !jobs_.empty(); });
                const std::function<void()> *job = jobs_.front();
                jobs_.pop_front();
                (*job)();
                ++done_;
                done_cv_.notify_all();
            }
        }).detach();
    }
    std::mutex mutex_;
    std::condition_variable wake_, done_cv_;
    std::deque<const std::function<void()> *> jobs_;
    uint64_t posted_ = 0, done_ = 0;
};

} // namespace

std::string WorkerDeath::report_key() const {
    switch (cause) {
    case Cause::signal: return what.rfind("SIG", 0) == 0 ? what.substr(0, what.find(' ')) : "signal";
    case Cause::exit: return "exit";
    case Cause::memory_limit: return "memory_limit";
    case Cause::timeout: return "timeout";
    case Cause::protocol: return "protocol";
    case Cause::not_running: return "not_running";
    }
    return "unknown";
}

std::string WorkerProcess::executable() {
    if (const char *env = std::getenv("SLUICE_WORKER"); env && *env) return env;
    std::error_code ec;
    auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
    if (!ec) {
        auto beside = self.parent_path() / "sluice-worker";
        if (std::filesystem::exists(beside, ec)) return beside.string();
    }
#ifdef SLUICE_WORKER_BUILD_PATH
    return SLUICE_WORKER_BUILD_PATH;
#else
    return "sluice-worker";
#endif
}

WorkerProcess::~WorkerProcess() {
    if (pid_ > 0) {
        ::kill(pid_, SIGKILL);
        reap(WorkerDeath{WorkerDeath::Cause::signal, "SIGKILL"});
    }
    if (channel_ >= 0) ::close(channel_);
}

std::string WorkerProcess::spawn(const std::string &stage_id) {
    std::string problem = input_.create(("sluice-in-" + stage_id).c_str());
    if (problem.empty()) problem = output_.create(("sluice-out-" + stage_id).c_str());
    if (problem.empty() && !input_.reserve(worker::kInputDataOffset)) problem = "cannot size shared memory";
    if (!problem.empty()) return problem;
    new (input_.data()) worker::SharedFlags{};
    int pair[2];
    if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) != 0)
        return std::string("cannot make a channel: ") + std::strerror(errno);
    channel_ = pair[0];
    // Above the fixed numbers, so the dup2s below cannot clobber each other.
    int child_channel = ::fcntl(pair[1], F_DUPFD_CLOEXEC, 10);
    int in_fd = ::fcntl(input_.fd(), F_DUPFD_CLOEXEC, 10);
    int out_fd = ::fcntl(output_.fd(), F_DUPFD_CLOEXEC, 10);
    ::close(pair[1]);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, child_channel, worker::kChannelFd);
    posix_spawn_file_actions_adddup2(&actions, in_fd, worker::kInputFd);
    posix_spawn_file_actions_adddup2(&actions, out_fd, worker::kOutputFd);
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    sigset_t none, defaults;
    sigemptyset(&none);
    sigemptyset(&defaults);
    for (int sig : {SIGINT, SIGTERM, SIGPIPE, SIGHUP, SIGSEGV, SIGABRT, SIGBUS, SIGFPE, SIGILL}) sigaddset(&defaults, sig);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setsigdefault(&attr, &defaults);
    // Its own process group: a Ctrl-C at the terminal is the host's to handle.
    posix_spawnattr_setpgroup(&attr, 0);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP);
    const std::string exe = executable();
    // Its one argument: the host's pid, to tell whether it is still there.
    std::string host_pid = std::to_string(::getpid());
    char *argv[] = {const_cast<char *>(exe.c_str()), host_pid.data(), nullptr};
    pid_t pid = -1;
    int rc = 0;
    Spawner::instance().run([&] { rc = ::posix_spawn(&pid, exe.c_str(), &actions, &attr, argv, environ); });
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
    ::close(child_channel);
    ::close(in_fd);
    ::close(out_fd);
    if (rc != 0) return "cannot start the worker " + exe + ": " + std::strerror(rc);
    pid_ = pid;
    return {};
}

bool WorkerProcess::send(const worker::Header &h, std::string_view text, bool wait) {
    return channel_ >= 0 && worker::send_message(channel_, h, text, wait);
}

uint64_t WorkerProcess::private_rss_kb() const {
    // Resident pages minus shared ones (libraries, the shared regions).
    char path[64];
    std::snprintf(path, sizeof path, "/proc/%d/statm", int(pid_));
    std::ifstream in(path);
    uint64_t size = 0, resident = 0, shared = 0;
    if (!(in >> size >> resident >> shared)) return 0;
    static const uint64_t page_kb = uint64_t(::sysconf(_SC_PAGESIZE)) / 1024;
    return (resident > shared ? resident - shared : 0) * page_kb;
}

WorkerDeath WorkerProcess::reap(std::optional<WorkerDeath> known) {
    int status = 0;
    struct rusage usage {};
    pid_t r;
    do r = ::wait4(pid_, &status, 0, &usage);
    while (r < 0 && errno == EINTR);
    pid_ = -1;
    // The channel stays open until the destructor: another thread may be
    // sending an acknowledgement on it (to a dead peer: it just fails).
    if (known) return *known;
    if (r > 0 && WIFSIGNALED(status))
        return WorkerDeath{WorkerDeath::Cause::signal, signal_name(WTERMSIG(status))};
    if (r > 0 && WIFEXITED(status))
        return WorkerDeath{WorkerDeath::Cause::exit, "exit code " + std::to_string(WEXITSTATUS(status))};
    return WorkerDeath{WorkerDeath::Cause::protocol, "it vanished"};
}

std::optional<WorkerDeath> WorkerProcess::await_reply(
    const WorkerLimits &limits, worker::Header &reply, std::string &text,
    const std::function<void(const worker::Header &, const std::string &)> &on_message,
    const std::function<bool()> &poll) {
    if (pid_ <= 0) return WorkerDeath{WorkerDeath::Cause::not_running, "no worker running"};
    const auto started = Clock::now();
    const auto deadline = started + std::chrono::milliseconds(limits.timeout_ms);
    // Samples its memory; past the limit the worker is killed.
    auto over_memory_limit = [&]() -> std::optional<WorkerDeath> {
        const uint64_t rss = private_rss_kb();
        peak_rss_kb_ = std::max(peak_rss_kb_, rss);
        if (!limits.memory_limit_mb || rss <= uint64_t(limits.memory_limit_mb) * 1024) return std::nullopt;
        ::kill(pid_, SIGKILL);
        return reap(WorkerDeath{WorkerDeath::Cause::memory_limit,
                                "memory limit (" + std::to_string(limits.memory_limit_mb) + " MB)"});
    };
    for (;;) {
        struct pollfd p {channel_, POLLIN, 0};
        int n = ::poll(&p, 1, kWatchMs);
        if (n > 0 && (p.revents & POLLIN)) {
            if (!worker::receive_message(channel_, reply, text)) return reap(std::nullopt); // it died
            // A call too short to be watched can still pass the limit:
            // that worker is dead too, and the call is sent again.
            if (reply.op == worker::Op::reply) return over_memory_limit();
            on_message(reply, text);
            continue;
        }
        if (n > 0 && (p.revents & (POLLHUP | POLLERR))) return reap(std::nullopt);
        if (!poll()) {
            ::kill(pid_, SIGKILL);
            return reap(WorkerDeath{WorkerDeath::Cause::signal, "killed: the run is aborting"});
        }
        if (auto death = over_memory_limit()) return death;
        if (limits.timeout_ms && Clock::now() > deadline) {
            ::kill(pid_, SIGKILL);
            return reap(WorkerDeath{WorkerDeath::Cause::timeout,
                                    "timed out after " + std::to_string(limits.timeout_ms) + " ms"});
        }
    }
}

void WorkerProcess::shut_down() {
    if (pid_ <= 0) return;
    send(worker::Header{worker::Op::quit});
    // A worker that does not go within a few seconds is killed.
    for (int i = 0; i < 300; ++i) {
        int status = 0;
        pid_t r = ::waitpid(pid_, &status, WNOHANG);
        if (r == pid_ || r < 0) {
            pid_ = -1;
            break;
        }
        ::usleep(10000);
    }
    if (pid_ > 0) {
        ::kill(pid_, SIGKILL);
        reap(WorkerDeath{WorkerDeath::Cause::signal, "SIGKILL"});
    }
}

} // namespace sluice
