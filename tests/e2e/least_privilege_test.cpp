// What sluice does about its own privileges: a run as root that listens on
// the network says so, and an isolated stage's worker processes cannot gain
// privileges (no_new_privs), whoever starts sluice.
#include "child_process.hpp"
#include "eventually.hpp"
#include "free_port.hpp"
#include "http_client.hpp"
#include "temp_dir.hpp"

#include <gtest/gtest.h>

#include <csignal>
#include <dirent.h>
#include <fstream>
#include <unistd.h>

using namespace sluice::test;
using namespace std::chrono_literals;

namespace {

// The worker processes (sluice-worker) whose parent is `parent`.
std::vector<pid_t> workers_of(pid_t parent) {
    std::vector<pid_t> out;
    DIR *proc = ::opendir("/proc");
    while (const dirent *e = proc ? ::readdir(proc) : nullptr) {
        const pid_t pid = std::atoi(e->d_name);
        if (pid <= 0) continue;
        std::ifstream stat("/proc/" + std::string(e->d_name) + "/stat");
        std::string line;
        std::getline(stat, line);
        // "PID (COMM) STATE PPID ...": COMM may hold spaces, so from the last ')'.
        const size_t close = line.rfind(')');
        if (close == std::string::npos || line.find("(sluice-worker)") == std::string::npos) continue;
        char state = 0;
        int ppid = 0;
        if (std::sscanf(line.c_str() + close + 1, " %c %d", &state, &ppid) == 2 && ppid == parent) out.push_back(pid);
    }
    if (proc) ::closedir(proc);
    return out;
}

std::string status_field(pid_t pid, const std::string &field) {
    std::ifstream status("/proc/" + std::to_string(pid) + "/status");
    for (std::string line; std::getline(status, line);)
        if (line.rfind(field + ":", 0) == 0) return line.substr(field.size() + 1);
    return "";
}

} // namespace

TEST(LeastPrivilege, ARunAsRootThatListensSaysWhere) {
    TempDir dir;
    const int ingest = free_loopback_port();
    std::string m = dir.write("m.json", R"({"name":"listener","stages":[
      {"id":"in","kind":"extractor","plugin":"http","config":{"port":)" + std::to_string(ingest) + R"(}},
      {"id":"out","kind":"loader","plugin":"null"}]})");
    ChildProcess p({sluice_binary(), "run", m, "--admin", "127.0.0.1:0"});
    const int admin = port_after(p, "admin endpoint listening on http://127.0.0.1:");
    ASSERT_GT(admin, 0) << p.err_so_far();
    ASSERT_TRUE(eventually([&] { return http_request(admin, "GET", "/ready", "", {}, "", 5).status == 200; }, 30s));
    p.signal(SIGTERM);
    ProcessResult r = p.wait(60s);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    const bool warned = r.err.find("sluice runs as root and listens on ") != std::string::npos;
    if (::geteuid() == 0) {
        ASSERT_TRUE(warned) << r.err;
        // Both listeners, whichever opened them.
        const std::string line = r.err.substr(r.err.find("sluice runs as root and listens on "));
        EXPECT_NE(line.find("127.0.0.1:" + std::to_string(ingest)), std::string::npos) << line;
        EXPECT_NE(line.find("127.0.0.1:" + std::to_string(admin)), std::string::npos) << line;
        EXPECT_NE(line.find("run it as a user of its own"), std::string::npos) << line;
    } else {
        EXPECT_FALSE(warned) << "not root: nothing to warn about\n" << r.err;
    }
    // A run that listens on nothing has nothing to say, root or not.
    std::string quiet = dir.write("q.json", R"({"name":"quiet","stages":[
      {"id":"in","kind":"extractor","plugin":"generate","config":{"count":10}},
      {"id":"out","kind":"loader","plugin":"null"}]})");
    ProcessResult q = run_sluice({"run", quiet});
    EXPECT_EQ(q.exit_code, 0) << q.err;
    EXPECT_EQ(q.err.find("listens on"), std::string::npos) << q.err;
}

TEST(LeastPrivilege, IsolatedWorkersCannotGainPrivileges) {
    TempDir dir;
    std::string m = dir.write("m.json", R"({"name":"workers","plugin_dirs":[")" + std::string(SLUICE_TEST_PLUGIN_DIR) +
                                            R"("],"stages":[
      {"id":"in","kind":"extractor","plugin":"generate","batch_size":20,"config":{"count":1000000}},
      {"id":"pace","kind":"transformer","plugin":"fault","config":{"slow_ms":20}},
      {"id":"shape","kind":"transformer","plugin":"faulty","isolation":"process","threads":2,
       "config":{"fault":"crash","match":"never in a record"}},
      {"id":"out","kind":"loader","plugin":"null"}]})");
    ChildProcess p({sluice_binary(), "run", m, "--admin", "127.0.0.1:0"});
    // Ready means running, which comes after every worker answered init, so
    // after each set the flag: a worker looked at sooner may still be in its
    // start-up (seen under ASan on a slow machine).
    const int admin = port_after(p, "admin endpoint listening on http://127.0.0.1:");
    ASSERT_GT(admin, 0) << p.err_so_far();
    ASSERT_TRUE(eventually([&] { return http_request(admin, "GET", "/ready", "", {}, "", 5).status == 200; }, 30s))
        << p.err_so_far();
    std::vector<pid_t> workers;
    ASSERT_TRUE(eventually([&] { return (workers = workers_of(p.pid())).size() == 2; }, 30s))
        << workers.size() << " workers\n" << p.err_so_far();
    const std::string host = status_field(p.pid(), "NoNewPrivs");
    for (pid_t w : workers) EXPECT_EQ(status_field(w, "NoNewPrivs"), "\t1") << "worker " << w;
    p.signal(SIGTERM);
    EXPECT_EQ(p.wait(60s).exit_code, 0);
    // Only meaningful when whoever started sluice did not set it already.
    if (host != "\t0") GTEST_SKIP() << "this environment starts sluice with no_new_privs set: the workers' flag says nothing";
}
