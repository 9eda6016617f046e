#include "child_process.hpp"

#include <cstdlib>

#include "temp_dir.hpp"

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <fcntl.h>
#include <spawn.h>
#include <stdexcept>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

extern char **environ;

namespace sluice::test {

namespace {
std::string temp_name(const char *what) {
    static int counter = 0;
    return (std::filesystem::temp_directory_path() /
            ("sluice-child-" + std::to_string(::getpid()) + "-" + std::to_string(++counter) + "." + what))
        .string();
}
} // namespace

std::string sluice_binary() { return SLUICE_BINARY; }

ChildProcess::ChildProcess(std::vector<std::string> argv) {
    out_path_ = temp_name("out");
    err_path_ = temp_name("err");
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 1, out_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_addopen(&actions, 2, err_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    std::vector<char *> args;
    for (auto &a : argv) args.push_back(a.data());
    args.push_back(nullptr);
    int rc = posix_spawn(&pid_, args[0], &actions, nullptr, args.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    if (rc != 0) throw std::runtime_error("cannot start " + argv[0]);
}

ChildProcess::~ChildProcess() {
    if (!reaped_ && pid_ > 0) {
        ::kill(pid_, SIGKILL);
        int status;
        ::waitpid(pid_, &status, 0);
    }
    std::remove(out_path_.c_str());
    std::remove(err_path_.c_str());
}

void ChildProcess::signal(int sig) const { ::kill(pid_, sig); }

std::string ChildProcess::err_so_far() const { return read_file(err_path_); }
std::string ChildProcess::out_so_far() const { return read_file(out_path_); }

bool ChildProcess::wait_for_err(const std::string &text, std::chrono::milliseconds timeout) const {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (err_so_far().find(text) == std::string::npos) {
        if (std::chrono::steady_clock::now() > deadline) return false;
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return true;
}

ProcessResult ChildProcess::wait(std::chrono::milliseconds timeout) {
    ProcessResult r;
    auto deadline = std::chrono::steady_clock::now() + timeout;
    int status = 0;
    for (;;) {
        pid_t done = ::waitpid(pid_, &status, WNOHANG);
        if (done == pid_) break;
        if (std::chrono::steady_clock::now() > deadline) {
            ::kill(pid_, SIGKILL);
            ::waitpid(pid_, &status, 0);
            reaped_ = true;
            r.out = read_file(out_path_);
            r.err = read_file(err_path_) + "\n(test: killed after timeout)";
            return r;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    reaped_ = true;
    if (WIFEXITED(status)) r.exit_code = WEXITSTATUS(status);
    else if (WIFSIGNALED(status)) r.exit_code = 128 + WTERMSIG(status);
    r.out = read_file(out_path_);
    r.err = read_file(err_path_);
    return r;
}

ProcessResult run_sluice(const std::vector<std::string> &args, std::chrono::milliseconds timeout) {
    std::vector<std::string> argv{sluice_binary()};
    argv.insert(argv.end(), args.begin(), args.end());
    ChildProcess child(argv);
    return child.wait(timeout);
}

int64_t sluice_peak_rss_mb(const std::vector<std::string> &args, ProcessResult &result) {
    std::vector<std::string> argv{"/usr/bin/time", "-f", "peak_kb=%M", sluice_binary()};
    argv.insert(argv.end(), args.begin(), args.end());
    ChildProcess child(argv);
    result = child.wait();
    auto pos = result.err.rfind("peak_kb=");
    if (pos == std::string::npos) return -1;
    return std::stoll(result.err.substr(pos + 8)) / 1024;
}

int port_after(const ChildProcess &p, const std::string &prefix) {
    if (!p.wait_for_err(prefix)) return -1;
    std::string err = p.err_so_far();
    size_t at = err.find(prefix) + prefix.size();
    return std::atoi(err.c_str() + at);
}

} // namespace sluice::test
