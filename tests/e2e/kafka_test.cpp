// The Kafka connector end to end on librdkafka's mock cluster (no broker
// package exists here; tests/kafka_mock runs one in a process of its own):
// offsets committed only once delivered, keys and headers carried through
// the idempotent loader, and three workers of which one is killed, its
// partitions handed over with nothing lost.
#include "child_process.hpp"
#include "eventually.hpp"
#include "kafka_cluster.hpp"
#include "record_accounting.hpp"
#include "redis_server.hpp"
#include "temp_dir.hpp"

#include <boost/json.hpp>
#include <gtest/gtest.h>

#include <signal.h>

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <sstream>
#include <thread>

using namespace sluice::test;
using namespace std::chrono_literals;
namespace bj = boost::json;

namespace {

int64_t total(const std::map<int32_t, int64_t> &offsets) {
    int64_t sum = 0;
    for (const auto &[p, o] : offsets) sum += o;
    return sum;
}

// Short group timeouts so that a killed member is noticed within seconds.
const char *kGroupProperties =
    R"("properties":{"session.timeout.ms":"6000","heartbeat.interval.ms":"500","topic.metadata.refresh.interval.ms":"1000"})";

} // namespace

class Kafka : public ::testing::Test {
protected:
    void SetUp() override {
        ASSERT_TRUE(KafkaCluster::available()) << "the mock cluster helper (tests/kafka_mock) was not built";
    }
};

TEST_F(Kafka, OffsetsAreCommittedOnlyOnceDeliveredAndKeysAndHeadersCarryThrough) {
    KafkaCluster kafka({"in:3", "out:3"});
    std::vector<std::string> values, keys;
    for (int i = 0; i < 1000; ++i) {
        values.push_back("{\"n\":" + std::to_string(i) + "}");
        keys.push_back("customer-" + std::to_string(i % 7));
    }
    values.push_back("not json");
    keys.push_back("bad");
    kafka.produce("in", values, keys, {{"trace", "abc"}});
    TempDir dir;
    // The file loader makes its output durable only when it flushes: no
    // offset may be committed before, though the kafka loader has them all.
    std::string m = dir.write("m.json", R"({"name":"k","stages":[
        {"id":"src","kind":"extractor","plugin":"kafka","on_error":{"then":"dead_letter","dead_letter":"dlq"},
         "config":{"brokers":")" + kafka.bootstrap() + R"(","topics":["in"],"group":"g",)" + kGroupProperties + R"(}},
        {"id":"file","kind":"loader","plugin":"file","inputs":["src"],"config":{"path":"out.ndjson"}},
        {"id":"copy","kind":"loader","plugin":"kafka","inputs":["src"],
         "config":{"brokers":")" + kafka.bootstrap() + R"(","topic":"out","key_attribute":"kafka_key",
                   "header_attributes":["trace","kafka_offset"]}},
        {"id":"dlq","kind":"loader","plugin":"file","config":{"path":"dead.ndjson"}}]})");
    ChildProcess child({sluice_binary(), "run", m, "--report", dir / "r.json", "--log-level", "info"});
    ASSERT_TRUE(eventually([&] { return kafka.read_all("out").size() == 1000; })) << child.err_so_far();
    std::this_thread::sleep_for(1s);
    EXPECT_EQ(total(kafka.committed("in", "g")), 0) << "committed before the file loader made them durable";
    child.signal(SIGTERM);
    ProcessResult r = child.wait(60s);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(total(kafka.committed("in", "g")), 1001) << r.err;
    EXPECT_EQ(read_lines(dir / "out.ndjson").size(), 1000u);
    auto dead = read_lines(dir / "dead.ndjson");
    ASSERT_EQ(dead.size(), 1u);
    EXPECT_NE(dead[0].find(": invalid JSON ("), std::string::npos) << dead[0];
    EXPECT_NE(dead[0].find("message in/"), std::string::npos) << dead[0];

    std::set<int64_t> seen;
    for (const KafkaMessage &msg : kafka.read_all("out")) {
        int64_t n = bj::parse(msg.value).at("n").to_number<int64_t>();
        seen.insert(n);
        EXPECT_EQ(msg.key, "customer-" + std::to_string(n % 7));
        std::map<std::string, std::string> headers(msg.headers.begin(), msg.headers.end());
        ASSERT_EQ(headers.size(), 2u);
        EXPECT_EQ(headers["trace"], "abc");
        EXPECT_TRUE(headers.count("kafka_offset"));
    }
    EXPECT_EQ(seen.size(), 1000u);
    // Same key, same partition: the key went through.
    std::map<std::string, std::set<int32_t>> partitions_of_key;
    for (const KafkaMessage &msg : kafka.read_all("out")) partitions_of_key[msg.key].insert(msg.partition);
    for (const auto &[key, parts] : partitions_of_key) EXPECT_EQ(parts.size(), 1u) << key;
}

TEST_F(Kafka, AManifestPropertyTheGuaranteeRestsOnIsRefused) {
    TempDir dir;
    std::string m = dir.write("m.json", R"({"name":"k","stages":[
        {"id":"src","kind":"extractor","plugin":"kafka",
         "config":{"brokers":"127.0.0.1:1","topics":["in"],"group":"g","properties":{"enable.auto.commit":"true"}}},
        {"id":"copy","kind":"loader","plugin":"kafka",
         "config":{"brokers":"127.0.0.1:1","topic":"out","properties":{"no.such.property":"1"}}}]})");
    ProcessResult r = run_sluice({"validate", m});
    EXPECT_EQ(r.exit_code, 2) << r.err;
    EXPECT_NE(r.err.find("/stages/0/config: properties.enable.auto.commit: set by the stage to false"),
              std::string::npos) << r.err;
    EXPECT_NE(r.err.find("/stages/1/config: properties.no.such.property: No such configuration property"),
              std::string::npos) << r.err;
}

TEST_F(Kafka, FromARedisStreamWithKeysFromAFieldAndARecordWithoutOneToTheErrorPath) {
    // One connector into the other: entries of a Redis stream produced to
    // Kafka keyed by their "id"; a record that is JSON but not an object has
    // no field to key by: it fails alone and is dead-lettered, and its entry
    // is acknowledged like the others once that is done.
    KafkaCluster kafka({"out:3"});
    RedisServer redis;
    std::vector<std::string> entries;
    for (int i = 0; i < 10; ++i) entries.push_back("{\"id\":" + std::to_string(i) + "}");
    entries.push_back("[1,2]");
    redis.add_entries("s", entries);
    TempDir dir;
    std::string m = dir.write("m.json", R"({"name":"r2k","stages":[
        {"id":"src","kind":"extractor","plugin":"redis","config":{"url":")" + redis.url() + R"(","stream":"s","group":"g"}},
        {"id":"copy","kind":"loader","plugin":"kafka","on_error":{"then":"dead_letter","dead_letter":"dlq"},
         "config":{"brokers":")" + kafka.bootstrap() + R"(","topic":"out","key_field":"id"}},
        {"id":"dlq","kind":"loader","plugin":"file","config":{"path":"dead.ndjson","append":true}}]})");
    ChildProcess child({sluice_binary(), "run", m, "--report", dir / "r.json"});
    ASSERT_TRUE(eventually([&] { return read_lines(dir / "dead.ndjson").size() == 1; })) << child.err_so_far();
    ASSERT_TRUE(eventually([&] { return redis.group_info("s", "g", "pending") == 0; })) << child.err_so_far();
    child.signal(SIGTERM);
    ProcessResult r = child.wait(60s);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    std::set<std::string> keys;
    for (const KafkaMessage &msg : kafka.read_all("out")) {
        EXPECT_EQ(msg.key, std::to_string(bj::parse(msg.value).at("id").to_number<int64_t>()));
        keys.insert(msg.key);
    }
    EXPECT_EQ(keys.size(), 10u);
    EXPECT_NE(read_lines(dir / "dead.ndjson")[0].find("key_field id: payload is not a JSON object"), std::string::npos);
    bj::object report = read_checked_report(dir / "r.json");
    EXPECT_EQ(stage_of(report, "copy").at("counters").at("produced").to_number<int64_t>(), 10);
}

TEST_F(Kafka, ValidateCheckFindsAMissingTopicAndBrokersThatDoNotAnswer) {
    KafkaCluster kafka({"in:1"});
    TempDir dir;
    std::string m = dir.write("m.json", R"({"name":"k","stages":[
        {"id":"src","kind":"extractor","plugin":"kafka",
         "config":{"brokers":")" + kafka.bootstrap() + R"(","topics":["in","missing"],"group":"g"}},
        {"id":"copy","kind":"loader","plugin":"kafka","config":{"brokers":"127.0.0.1:1","topic":"out"}}]})");
    ProcessResult r = run_sluice({"validate", m, "--check"});
    EXPECT_NE(r.exit_code, 0) << r.err;
    EXPECT_NE(r.err.find("/stages/0/config/topics: topic missing does not exist on " + kafka.bootstrap()),
              std::string::npos) << r.err;
    EXPECT_EQ(r.err.find("topic in does not exist"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("/stages/1/config/brokers: no answer from 127.0.0.1:1 within 5 s"), std::string::npos)
        << r.err;
}

namespace {
std::set<int32_t> partitions_in(const std::string &log, const std::string &marker);
} // namespace

TEST_F(Kafka, ThreeWorkersAndAKilledOneHandsItsPartitionsOverWithNothingLost) {
    constexpr int kMessages = 200000;
    KafkaCluster kafka({"in:6"});
    std::vector<std::string> values;
    values.reserve(kMessages);
    for (int i = 0; i < kMessages; ++i) values.push_back("{\"n\":" + std::to_string(i) + ",\"pad\":\"abcdefgh\"}");
    kafka.produce("in", values);
    values.clear();
    TempDir dir;
    // A slow stage keeps the run going long enough to be killed mid-way.
    std::string m = dir.write("m.json", R"({"name":"workers","plugin_dirs":[")" + std::string(SLUICE_TEST_PLUGIN_DIR) +
                                            R"("],"stages":[
        {"id":"src","kind":"extractor","plugin":"kafka","batch_size":200,
         "config":{"brokers":")" + kafka.bootstrap() + R"(","topics":["in"],"group":"g",)" + kGroupProperties + R"(}},
        {"id":"slow","kind":"transformer","plugin":"fault","config":{"slow_ms":20}},
        {"id":"out","kind":"loader","plugin":"file",
         "config":{"path":"out-${WORKER}.ndjson","append":true,"attributes_field":"_meta"}}]})");
    std::vector<std::unique_ptr<ChildProcess>> workers;
    for (int w = 1; w <= 3; ++w) {
        ::setenv("WORKER", ("w" + std::to_string(w)).c_str(), 1);
        workers.push_back(std::make_unique<ChildProcess>(
            std::vector<std::string>{sluice_binary(), "run", m, "--log-level", "info"}));
    }
    ::unsetenv("WORKER");
    std::random_device seed;
    std::mt19937 random(seed());
    const int64_t kill_at = std::uniform_int_distribution<int64_t>(kMessages / 5, kMessages * 3 / 5)(random);
    const int victim = std::uniform_int_distribution<int>(0, 2)(random);
    ASSERT_TRUE(eventually([&] { return total(kafka.committed("in", "g")) >= kill_at; }, 180s));
    workers[victim]->signal(SIGKILL);
    std::string logs = workers[victim]->wait(10s).err;
    // Offsets committed at the kill: below them everything was delivered,
    // so only messages at or after them may come twice.
    const std::map<int32_t, int64_t> at_kill = kafka.committed("in", "g");
    ASSERT_TRUE(eventually([&] { return total(kafka.committed("in", "g")) == kMessages; }, 180s))
        << "committed " << total(kafka.committed("in", "g")) << " of " << kMessages;
    for (int w = 0; w < 3; ++w) {
        if (w == victim) continue;
        workers[w]->signal(SIGTERM);
        ProcessResult r = workers[w]->wait(60s);
        EXPECT_EQ(r.exit_code, 0) << r.err;
        logs += r.err;
    }
    std::map<int64_t, int> counts;
    std::map<int64_t, std::pair<int32_t, int64_t>> where;
    for (int w = 1; w <= 3; ++w) {
        for (const std::string &line : read_lines(dir / ("out-w" + std::to_string(w) + ".ndjson"))) {
            boost::system::error_code ec;
            bj::value v = bj::parse(line, ec);
            if (ec) continue; // cut short by the kill: never committed
            int64_t n = v.at("n").to_number<int64_t>();
            ++counts[n];
            where[n] = {std::stoi(std::string(v.at("_meta").at("kafka_partition").as_string())),
                        std::stoll(std::string(v.at("_meta").at("kafka_offset").as_string()))};
        }
    }
    ASSERT_EQ(counts.size(), size_t(kMessages)) << "messages missing from the union of the outputs";
    // A committed message comes again only from a partition librdkafka 2.0
    // declared lost somewhere (its issue 4059, see the README).
    const std::set<int32_t> lost = partitions_in(logs, "] lost ");
    size_t duplicates = 0;
    for (const auto &[n, times] : counts) {
        if (times == 1) continue;
        duplicates += size_t(times - 1);
        auto [partition, offset] = where[n];
        auto committed = at_kill.find(partition);
        ASSERT_TRUE(committed == at_kill.end() || offset >= committed->second || lost.count(partition))
            << "message " << partition << "@" << offset << " came " << times
            << " times though it was committed; the workers said:\n"
            << logs;
    }
    EXPECT_NE(logs.find("assigned "), std::string::npos) << "the survivors took the partitions over";
    std::cout << "killed w" << victim + 1 << " at " << total(at_kill) << " committed; duplicates " << duplicates
              << "\n";
    RecordProperty("duplicates", int(duplicates));
}

namespace {

// Two workers of one manifest: the second joins once the first has written
// a fifth of kMessages; both are stopped once every message is out.
struct JoinRun {
    ProcessResult first, second;
    std::map<int64_t, int> counts;           // n -> times in the outputs
    std::map<int64_t, int32_t> partition_of; // n -> its partition
    size_t second_got = 0;
};

constexpr int kJoinMessages = 40000;

size_t lines_in(const TempDir &dir, const char *worker) { return read_lines(dir / ("out-" + std::string(worker) + ".ndjson")).size(); }

JoinRun join_mid_run(int commit_interval_ms) {
    JoinRun run;
    KafkaCluster kafka({"in:6"});
    std::vector<std::string> values;
    for (int i = 0; i < kJoinMessages; ++i) values.push_back("{\"n\":" + std::to_string(i) + "}");
    kafka.produce("in", values);
    TempDir dir;
    std::string m = dir.write("m.json", R"({"name":"join","plugin_dirs":[")" + std::string(SLUICE_TEST_PLUGIN_DIR) +
                                            R"("],"stages":[
        {"id":"src","kind":"extractor","plugin":"kafka","batch_size":100,
         "config":{"brokers":")" + kafka.bootstrap() + R"(","topics":["in"],"group":"g","commit_interval_ms":)" +
                                            std::to_string(commit_interval_ms) + "," + kGroupProperties + R"(}},
        {"id":"slow","kind":"transformer","plugin":"fault","config":{"slow_ms":40}},
        {"id":"out","kind":"loader","plugin":"file",
         "config":{"path":"out-${WORKER}.ndjson","append":true,"attributes_field":"_meta"}}]})");
    ::setenv("WORKER", "w1", 1);
    ChildProcess first({sluice_binary(), "run", m, "--log-level", "info"});
    EXPECT_TRUE(eventually([&] { return lines_in(dir, "w1") >= size_t(kJoinMessages / 5); })) << first.err_so_far();
    ::setenv("WORKER", "w2", 1);
    ChildProcess second({sluice_binary(), "run", m, "--log-level", "info"});
    ::unsetenv("WORKER");
    // Done once every message is out and nothing more comes for a second.
    size_t last = 0;
    auto deadline = std::chrono::steady_clock::now() + 180s;
    while (std::chrono::steady_clock::now() < deadline) {
        size_t now = lines_in(dir, "w1") + lines_in(dir, "w2");
        if (now >= size_t(kJoinMessages) && now == last) break;
        last = now;
        std::this_thread::sleep_for(1s);
    }
    first.signal(SIGTERM);
    second.signal(SIGTERM);
    run.first = first.wait(60s);
    run.second = second.wait(60s);
    for (const char *w : {"w1", "w2"}) {
        for (const std::string &line : read_lines(dir / ("out-" + std::string(w) + ".ndjson"))) {
            bj::value v = bj::parse(line);
            int64_t n = v.at("n").to_number<int64_t>();
            ++run.counts[n];
            run.partition_of[n] = std::stoi(std::string(v.at("_meta").at("kafka_partition").as_string()));
            if (std::string(w) == "w2") ++run.second_got;
        }
    }
    return run;
}

// The partitions named in log lines containing `marker`.
std::set<int32_t> partitions_in(const std::string &log, const std::string &marker) {
    std::set<int32_t> found;
    for (size_t at = log.find(marker); at != std::string::npos; at = log.find(marker, at + 1)) {
        std::string line = log.substr(at, log.find('\n', at) - at);
        for (size_t p = line.find("in/"); p != std::string::npos; p = line.find("in/", p + 1))
            found.insert(std::stoi(line.substr(p + 3)));
    }
    return found;
}

// Partitions given up right after the group refused a commit (logged,
// counted in commit_failures): they go over uncommitted, so the next owner
// reads them again from their last commit. The mock refuses so when it is
// starved of CPU and its rebalance timer runs out first.
std::set<int32_t> given_up_uncommitted(const std::string &log) {
    std::set<int32_t> found;
    std::istringstream lines(log);
    bool refused = false;
    for (std::string line; std::getline(lines, line);) {
        if (line.find("] commit failed: ") != std::string::npos) refused = true;
        else if (refused && line.find("] revoked ") != std::string::npos) {
            for (int32_t p : partitions_in(line, "] revoked ")) found.insert(p);
            refused = false;
        }
    }
    return found;
}

} // namespace

TEST_F(Kafka, ARebalanceHandsPartitionsOverOnlyOnceTheirRecordsInFlightAreDeliveredAndCommitted) {
    // The first worker gives partitions up mid-run: it stops pulling from
    // them, waits for their records in flight to be delivered, commits, and
    // only then lets them go, so the second worker starts exactly where the
    // first stopped. (Commits are rare here so that none crosses the rejoin;
    // see the next test for what librdkafka 2.0 does when one does.)
    // If the group refuses the give-up commit (the mock does when starved of
    // CPU), the run says nothing of the handover: it is checked for loss and
    // for duplicates outside those partitions, and tried again.
    for (int attempt = 1;; ++attempt) {
        JoinRun run = join_mid_run(600000);
        ASSERT_EQ(run.first.exit_code, 0) << run.first.err;
        ASSERT_EQ(run.second.exit_code, 0) << run.second.err;
        EXPECT_EQ(run.first.err.find("] lost "), std::string::npos) << run.first.err;
        std::set<int32_t> given_up = partitions_in(run.first.err, "] revoked ");
        std::set<int32_t> taken = partitions_in(run.second.err, "] assigned ");
        ASSERT_FALSE(taken.empty()) << run.second.err;
        for (int32_t p : taken) EXPECT_TRUE(given_up.count(p)) << "in/" << p << " went to the second worker ungiven";
        EXPECT_EQ(run.first.err.find("still in flight after"), std::string::npos) << run.first.err;
        EXPECT_GT(run.second_got, 0u);
        ASSERT_EQ(run.counts.size(), size_t(kJoinMessages)) << "messages lost";
        // (Only mid-run: what happens at the stop is not this test's concern.)
        std::set<int32_t> refused = given_up_uncommitted(run.first.err.substr(0, run.first.err.find("received SIGTERM")));
        for (const auto &[n, times] : run.counts)
            ASSERT_TRUE(times == 1 || refused.count(run.partition_of[n]))
                << "message " << n << " of in/" << run.partition_of[n] << " came " << times << " times\n"
                << run.first.err << "\n----\n" << run.second.err;
        if (refused.empty()) break;
        std::cout << "attempt " << attempt << ": the group refused the give-up commit of " << refused.size()
                  << " partitions; again\n";
        ASSERT_LT(attempt, 3) << "the group refused the give-up commit in every attempt:\n" << run.first.err;
    }
    // (What each worker commits when both stop at once is not checked: the
    // mock refuses commits while the group rebalances after the first one
    // leaves, where a broker accepts them; the single-worker test checks
    // the commit at a stop.)
}

TEST_F(Kafka, CommitsEvery50msDuringARebalanceCostNoDuplicateExceptWhereAPartitionIsDeclaredLost) {
    // librdkafka 2.0 (Debian 12) declares the whole assignment lost when a
    // commit crosses the rejoin and comes back with the old generation (its
    // issue 4059; the mock answers so every time, see the README). The stage
    // commits only while librdkafka says the member is steady, so even
    // commits every 50 ms should not cross a rejoin; if one does, a lost
    // partition that comes back to the same worker resumes where that
    // worker read to, and only one that goes to the other worker is read
    // again from its last commit: only there may records come twice.
    JoinRun run = join_mid_run(50);
    ASSERT_EQ(run.first.exit_code, 0) << run.first.err;
    ASSERT_EQ(run.second.exit_code, 0) << run.second.err;
    ASSERT_EQ(run.counts.size(), size_t(kJoinMessages)) << "messages lost";
    std::set<int32_t> moved = partitions_in(run.first.err, "] lost ");
    for (int32_t p : partitions_in(run.first.err, "; resuming lost ")) moved.erase(p);
    for (int32_t p : given_up_uncommitted(run.first.err)) moved.insert(p);
    size_t duplicates = 0;
    for (const auto &[n, times] : run.counts) {
        if (times == 1) continue;
        ++duplicates;
        ASSERT_TRUE(moved.count(run.partition_of[n]))
            << "message " << n << " of in/" << run.partition_of[n] << " came twice\n"
            << run.first.err << "\n----\n" << run.second.err;
    }
    std::cout << "partitions lost and moved: " << moved.size() << ", duplicates " << duplicates << "\n";
    RecordProperty("duplicates", int(duplicates));
}
