// Scale-out on Redis Streams: three `sluice run` processes with one
// manifest share a stream of 200,000 entries through a consumer group; one
// of them is SIGKILLed at a random point. Every entry must end up in the
// union of the outputs, and an entry may be there twice only if the killed
// worker had not acknowledged it (its output had it, the group did not know).
#include "child_process.hpp"
#include "redis_server.hpp"
#include "temp_dir.hpp"

#include <boost/json.hpp>
#include <gtest/gtest.h>

#include <signal.h>

#include <chrono>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <thread>

using namespace sluice::test;
using namespace std::chrono_literals;
namespace bj = boost::json;

TEST(RedisWorkers, ThreeWorkersShareAStreamAndAKilledOneLosesNothing) {
    ASSERT_TRUE(RedisServer::available()) << "redis-server is not installed (packaging/install-deps.sh)";
    constexpr int kEntries = 200000;
    RedisServer redis;
    redis.command({"XGROUP", "CREATE", "s", "g", "0", "MKSTREAM"});
    std::vector<std::string> payloads;
    payloads.reserve(kEntries);
    for (int i = 0; i < kEntries; ++i) payloads.push_back("{\"n\":" + std::to_string(i) + ",\"pad\":\"abcdefgh\"}");
    redis.add_entries("s", payloads);
    payloads.clear();

    TempDir dir;
    // One manifest; each worker's consumer name and output file come from
    // its environment, as with the systemd template unit's instance name.
    std::string m = dir.write("m.json", R"({"name":"workers","stages":[
        {"id":"src","kind":"extractor","plugin":"redis","batch_size":500,
         "config":{"url":")" + redis.url() + R"(","stream":"s","group":"g","consumer":"${WORKER}",
                   "claim_idle_ms":10000,"claim_interval_ms":500}},
        {"id":"out","kind":"loader","plugin":"file",
         "config":{"path":"out-${WORKER}.ndjson","append":true,"attributes_field":"_meta"}}]})");
    std::vector<std::unique_ptr<ChildProcess>> workers;
    for (int w = 1; w <= 3; ++w) {
        ::setenv("WORKER", ("w" + std::to_string(w)).c_str(), 1);
        workers.push_back(std::make_unique<ChildProcess>(std::vector<std::string>{sluice_binary(), "run", m}));
    }
    ::unsetenv("WORKER");

    std::random_device seed;
    std::mt19937 random(seed());
    const long long kill_at = std::uniform_int_distribution<long long>(kEntries / 5, kEntries * 4 / 5)(random);
    const int victim = std::uniform_int_distribution<int>(0, 2)(random);
    const std::string victim_name = "w" + std::to_string(victim + 1);
    auto deadline = std::chrono::steady_clock::now() + 120s;
    while (redis.group_info("s", "g", "entries-read") < kill_at && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(5ms);
    workers[victim]->signal(SIGKILL);
    workers[victim]->wait(10s);
    // What the killed worker had not acknowledged: only these may come twice.
    std::vector<std::string> unacknowledged = redis.pending_ids("s", "g", victim_name);
    const std::set<std::string> unacked(unacknowledged.begin(), unacknowledged.end());

    // The survivors read the rest and claim the victim's pending entries.
    deadline = std::chrono::steady_clock::now() + 180s;
    while (!(redis.group_info("s", "g", "entries-read") == kEntries && redis.group_info("s", "g", "pending") == 0) &&
           std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(50ms);
    for (int w = 0; w < 3; ++w) {
        if (w == victim) continue;
        workers[w]->signal(SIGTERM);
        ProcessResult r = workers[w]->wait(30s);
        EXPECT_EQ(r.exit_code, 0) << r.err;
    }
    ASSERT_EQ(redis.group_info("s", "g", "pending"), 0) << "entries left pending";

    std::map<int64_t, int> counts;
    std::map<int64_t, std::string> entry_of;
    std::map<std::string, size_t> per_worker;
    for (int w = 1; w <= 3; ++w) {
        const std::string name = "w" + std::to_string(w);
        for (const std::string &line : read_lines(dir / ("out-" + name + ".ndjson"))) {
            boost::system::error_code ec;
            bj::value v = bj::parse(line, ec);
            if (ec) continue; // the line the kill cut short: never acknowledged
            int64_t n = v.at("n").to_number<int64_t>();
            ++counts[n];
            entry_of[n] = std::string(v.at("_meta").at("redis_id").as_string());
            ++per_worker[name];
        }
    }
    ASSERT_EQ(counts.size(), size_t(kEntries)) << "entries missing from the union of the outputs";
    size_t duplicates = 0;
    for (const auto &[n, times] : counts) {
        if (times == 1) continue;
        duplicates += size_t(times - 1);
        EXPECT_TRUE(unacked.count(entry_of[n])) << "entry " << entry_of[n] << " (n " << n << ") came " << times
                                                << " times but the killed worker had acknowledged it";
    }
    EXPECT_LE(duplicates, unacked.size());
    std::cout << "killed " << victim_name << " after " << kill_at << " entries read; it left " << unacked.size()
              << " unacknowledged; duplicates " << duplicates << "; records per worker:";
    for (const auto &[name, n] : per_worker) std::cout << " " << name << "=" << n;
    std::cout << "\n";
    RecordProperty("duplicates", int(duplicates));
    RecordProperty("unacknowledged_at_kill", int(unacked.size()));
}
