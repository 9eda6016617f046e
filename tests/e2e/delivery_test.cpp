// At-least-once delivery end to end: runs killed with SIGKILL and started
// again lose nothing, and read again only what was not acknowledged.
#include "child_process.hpp"
#include "record_accounting.hpp"
#include "temp_dir.hpp"

#include <boost/json.hpp>
#include <gtest/gtest.h>

#include <csignal>
#include <filesystem>
#include <map>
#include <thread>

using namespace sluice::test;
namespace bj = boost::json;
using namespace std::chrono_literals;

namespace {

const std::string kTestPlugins = SLUICE_TEST_PLUGIN_DIR;

// The saved position of each worker of `stage`, parsed.
std::vector<bj::object> saved_positions(const std::string &state_file, const std::string &stage) {
    std::vector<bj::object> out;
    bj::object state = bj::parse(read_file(state_file)).as_object();
    const bj::value *st = state.at("stages").as_object().if_contains(stage);
    if (!st) return out;
    for (const auto &w : st->at("workers").as_array()) {
        const bj::value &p = w.at("position");
        out.push_back(p.is_null() ? bj::object{} : bj::parse(p.as_string()).as_object());
    }
    return out;
}

uint64_t saved_unacknowledged(const std::string &state_file) {
    uint64_t n = 0;
    bj::object state = bj::parse(read_file(state_file)).as_object();
    for (const auto &st : state.at("stages").as_object())
        for (const auto &w : st.value().at("workers").as_array()) n += w.at("unacknowledged").to_number<uint64_t>();
    return n;
}

// How many times each "id" appears in an NDJSON file.
std::map<std::string, int> id_counts(const std::string &path) {
    std::map<std::string, int> counts;
    for (const std::string &line : read_lines(path)) {
        if (line.empty()) continue;
        bj::value doc = bj::parse(line);
        const bj::value &id = doc.at("id");
        counts[id.is_string() ? std::string(id.as_string()) : bj::serialize(id)]++;
    }
    return counts;
}

// Two sources (CSV and NDJSON) into a slowed transformer, fanned out to two
// appending NDJSON loaders.
std::string two_source_manifest(int slow_ms) {
    return R"({"name":"resume","plugin_dirs":[")" + kTestPlugins + R"("],
  "state_dir":"state","checkpoint_interval_ms":50,
  "stages":[
    {"id":"csv","kind":"extractor","plugin":"file","batch_size":500,"config":{"path":"in.csv"}},
    {"id":"ndjson","kind":"extractor","plugin":"file","batch_size":500,"config":{"path":"in.ndjson"}},
    {"id":"work","kind":"transformer","plugin":"fault","inputs":["csv","ndjson"],"config":{"slow_ms":)" +
           std::to_string(slow_ms) + R"(}},
    {"id":"a","kind":"loader","plugin":"file","inputs":["work"],"config":{"path":"a.ndjson","append":true}},
    {"id":"b","kind":"loader","plugin":"file","inputs":["work"],"config":{"path":"b.ndjson","append":true}}
  ]})";
}

} // namespace

TEST(Delivery, KilledMidRunAndRestartedLosesNothingAndReplaysOnlyUnacknowledged) {
    TempDir dir;
    const int kRows = 60000;
    std::string csv = "id,name\n", ndjson;
    for (int i = 0; i < kRows; ++i) {
        csv += "c" + std::to_string(i) + ",\"row " + std::to_string(i) + "\"\n";
        ndjson += "{\"id\":\"n" + std::to_string(i) + "\",\"v\":" + std::to_string(i) + "}\n";
    }
    dir.write("in.csv", csv);
    dir.write("in.ndjson", ndjson);
    std::string m = dir.write("m.json", two_source_manifest(10));
    const std::string state = dir / "state/resume.state.json";

    // 240 batches of 10 ms: a few seconds. Kill it once both sources have
    // saved a position inside their file.
    ChildProcess child({sluice_binary(), "run", m});
    auto deadline = std::chrono::steady_clock::now() + 20s;
    bool both_saved = false;
    while (!both_saved && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(20ms);
        if (!exists(state)) continue;
        auto c = saved_positions(state, "csv"), n = saved_positions(state, "ndjson");
        both_saved = !c.empty() && !n.empty() && c[0].contains("offset") && n[0].contains("offset") &&
                     c[0].at("line").to_number<int64_t>() > 1000 && n[0].at("line").to_number<int64_t>() > 1000;
    }
    std::this_thread::sleep_for(100ms);
    child.signal(SIGKILL);
    ProcessResult killed = child.wait(10s);
    ASSERT_TRUE(both_saved) << killed.err;
    ASSERT_EQ(killed.exit_code, 128 + SIGKILL);

    // What the state says was safe when the process died.
    auto csv_pos = saved_positions(state, "csv").at(0), nd_pos = saved_positions(state, "ndjson").at(0);
    ASSERT_FALSE(csv_pos.contains("done")) << "killed before the end";
    int64_t csv_line = csv_pos.at("line").to_number<int64_t>(), nd_line = nd_pos.at("line").to_number<int64_t>();
    uint64_t unacknowledged = saved_unacknowledged(state);

    ProcessResult again = run_sluice({"run", m, "--report", dir / "r.json"});
    ASSERT_EQ(again.exit_code, 0) << again.err;
    bj::object report = read_checked_report(dir / "r.json");
    const bj::object &delivery = report.at("delivery").as_object();
    EXPECT_TRUE(delivery.at("resumed").as_bool());
    EXPECT_EQ(delivery.at("replayed").to_number<uint64_t>(), unacknowledged);
    EXPECT_EQ(delivery.at("at_least_once").as_array(), (bj::array{"a", "b"})) << "fed by two extractors";
    EXPECT_EQ(report.at("records").at("extracted").to_number<int64_t>(),
              (kRows - (csv_line - 1)) + (kRows - nd_line)) << "the second run reads only what comes after the position";

    // Every input record is in both outputs; those up to the saved position
    // exactly once, only those after it possibly twice.
    for (const char *out : {"a.ndjson", "b.ndjson"}) {
        auto counts = id_counts(dir / out);
        int replayed = 0;
        for (int i = 0; i < kRows; ++i) {
            for (auto [id, line, saved] : {std::tuple{"c" + std::to_string(i), i + 2, csv_line},
                                           std::tuple{"n" + std::to_string(i), i + 1, nd_line}}) {
                int n = counts.count(id) ? counts[id] : 0;
                ASSERT_GE(n, 1) << out << ": record " << id << " lost";
                if (line <= saved) ASSERT_EQ(n, 1) << out << ": " << id << " was acknowledged yet written twice";
                else ASSERT_LE(n, 2) << out << ": " << id;
                replayed += n - 1;
            }
        }
        EXPECT_EQ(counts.size(), size_t(2 * kRows)) << out << " holds records that were never input";
        // Issue 9, R5: duplicates are bounded by what was in flight (read,
        // not yet acknowledged when the state was last saved); they used to
        // run up to the whole input, with a replayed figure ten times too low.
        EXPECT_LE(uint64_t(replayed), unacknowledged) << out;
        std::cout << out << ": " << replayed << " records written twice; the state had " << unacknowledged
                  << " unacknowledged\n";
    }

    // A third run has nothing left to read.
    ProcessResult third = run_sluice({"run", m, "--report", dir / "r3.json"});
    ASSERT_EQ(third.exit_code, 0) << third.err;
    EXPECT_EQ(read_checked_report(dir / "r3.json").at("records").at("extracted").to_number<int64_t>(), 0);
}

TEST(Delivery, AGracefulStopAcknowledgesEverythingInFlight) {
    TempDir dir;
    std::string rows;
    for (int i = 0; i < 40000; ++i) rows += "{\"id\":" + std::to_string(i) + "}\n";
    dir.write("in.ndjson", rows);
    std::string m = dir.write("m.json", R"({"name":"g","plugin_dirs":[")" + kTestPlugins + R"("],"state_dir":"st",
  "stages":[{"id":"in","kind":"extractor","plugin":"file","batch_size":200,"config":{"path":"in.ndjson"}},
            {"id":"slow","kind":"transformer","plugin":"fault","config":{"slow_ms":10}},
            {"id":"out","kind":"loader","plugin":"file","config":{"path":"out.ndjson","append":true}}]})");
    ChildProcess child({sluice_binary(), "run", m, "--report", dir / "r1.json", "--log-level", "info"});
    ASSERT_TRUE(child.wait_for_err(": running ")) << child.err_so_far();
    std::this_thread::sleep_for(500ms);
    child.signal(SIGTERM);
    ProcessResult r = child.wait(20s);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    bj::object first = read_checked_report(dir / "r1.json");
    ASSERT_EQ(first.at("status").as_string(), "stopped");
    EXPECT_EQ(first.at("delivery").at("unacknowledged").to_number<int64_t>(), 0);
    ProcessResult again = run_sluice({"run", m, "--report", dir / "r2.json"});
    ASSERT_EQ(again.exit_code, 0) << again.err;
    EXPECT_EQ(read_checked_report(dir / "r2.json").at("delivery").at("replayed").to_number<int64_t>(), 0);
    auto counts = id_counts(dir / "out.ndjson");
    EXPECT_EQ(counts.size(), 40000u);
    for (const auto &[id, n] : counts) ASSERT_EQ(n, 1) << "record " << id << ": a graceful stop replays nothing";
}

TEST(Delivery, ALoaderThatCommitsAtTheEndAcknowledgesOnlyThen) {
    // The replacing file loader is durable only after its flush: a run
    // killed before then saves no position, and the rerun reads everything.
    TempDir dir;
    std::string rows;
    for (int i = 0; i < 20000; ++i) rows += "{\"id\":" + std::to_string(i) + "}\n";
    dir.write("in.ndjson", rows);
    std::string m = dir.write("m.json", R"({"name":"e","plugin_dirs":[")" + kTestPlugins + R"("],"state_dir":"st",
  "checkpoint_interval_ms":20,
  "stages":[{"id":"in","kind":"extractor","plugin":"file","batch_size":100,"config":{"path":"in.ndjson"}},
            {"id":"slow","kind":"transformer","plugin":"fault","config":{"slow_ms":10}},
            {"id":"out","kind":"loader","plugin":"file","config":{"path":"out.ndjson"}}]})");
    ChildProcess child({sluice_binary(), "run", m});
    // Kill it once it has saved state with records read but not acknowledged.
    auto deadline = std::chrono::steady_clock::now() + 30s;
    while (std::chrono::steady_clock::now() < deadline &&
           !(exists(dir / "st/e.state.json") && saved_unacknowledged(dir / "st/e.state.json") > 0))
        std::this_thread::sleep_for(20ms);
    child.signal(SIGKILL);
    child.wait(10s);
    ASSERT_TRUE(exists(dir / "st/e.state.json")) << "saved while running";
    EXPECT_TRUE(saved_positions(dir / "st/e.state.json", "in").at(0).empty()) << "but nothing acknowledged";
    EXPECT_GT(saved_unacknowledged(dir / "st/e.state.json"), 0u);
    ProcessResult again = run_sluice({"run", m, "--report", dir / "r.json"});
    ASSERT_EQ(again.exit_code, 0) << again.err;
    EXPECT_EQ(read_checked_report(dir / "r.json").at("records").at("loaded").to_number<int64_t>(), 20000);
    EXPECT_EQ(read_lines(dir / "out.ndjson").size(), 20000u);
}

TEST(Delivery, ARecordFailingTheRunIsNeverAcknowledged) {
    TempDir dir;
    std::string rows;
    for (int i = 1; i <= 1000; ++i) rows += "{\"id\":" + std::to_string(i) + "}\n";
    dir.write("in.ndjson", rows);
    // Record ids start at 1: fail_every 700 fails record 700 only.
    std::string manifest = R"({"name":"f","plugin_dirs":[")" + kTestPlugins + R"("],"state_dir":"st",
  "stages":[{"id":"in","kind":"extractor","plugin":"file","batch_size":100,"config":{"path":"in.ndjson"}},
            {"id":"check","kind":"transformer","plugin":"fault","config":{"fail_every":700},"on_error":"fail"},
            {"id":"out","kind":"loader","plugin":"file","config":{"path":"out.ndjson","append":true}}]})";
    std::string m = dir.write("m.json", manifest);
    ProcessResult r = run_sluice({"run", m, "--report", dir / "r.json"});
    ASSERT_EQ(r.exit_code, 1) << r.err;
    read_checked_report(dir / "r.json");
    // The batch holding record 700 (records 601-700) and all after it are
    // read again next time; the ones before are not.
    bj::object pos = saved_positions(dir / "st/f.state.json", "in").at(0);
    EXPECT_EQ(pos.at("line").to_number<int64_t>(), 600) << bj::serialize(pos);
}

TEST(Delivery, StateMismatchesAreOneLineErrors) {
    TempDir dir;
    dir.write("in.ndjson", "{\"id\":1}\n");
    auto manifest = [&](const std::string &extractor) {
        return R"({"name":"s","state_dir":"st","stages":[)" + extractor +
               R"(,{"id":"out","kind":"loader","plugin":"null"}]})";
    };
    std::string m = dir.write("m.json", manifest(R"({"id":"in","kind":"extractor","plugin":"file","config":{"path":"in.ndjson"}})"));
    ASSERT_EQ(run_sluice({"run", m}).exit_code, 0);
    const std::string state = dir / "st/s.state.json";

    dir.write("m.json", manifest(R"({"id":"in","kind":"extractor","plugin":"generate","config":{"count":5}})"));
    ProcessResult r = run_sluice({"run", m});
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.err.find(state + ": stage 'in' was saved by extractor 'file' but the manifest now runs 'generate'; "
                                 "move the state file away to start afresh"),
              std::string::npos)
        << r.err;

    dir.write("m.json", manifest(R"({"id":"in","kind":"extractor","plugin":"file","threads":2,"config":{"path":"*.ndjson"}})"));
    r = run_sluice({"run", m});
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.err.find(state + ": stage 'in' was saved with 1 workers but now has 2; set its threads back to 1 or "
                                 "move the state file away"),
              std::string::npos)
        << r.err;

    dir.write(state.substr(dir.path().size() + 1), "{\"format\":\"sluice-state/1\",\"stages\":{\"in\":{\"plugin\":\"file\","
                                                   "\"workers\":[{\"position\":\"{\\\"line\\\":3}\"}]}}}");
    dir.write("m.json", manifest(R"({"id":"in","kind":"extractor","plugin":"file","config":{"path":"in.ndjson"}})"));
    r = run_sluice({"run", m});
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.err.find(state + ": stage 'in': cannot resume from the saved position {\"line\":3}: saved position "
                                 "{\"line\":3} is not one this extractor wrote: no \"file\""),
              std::string::npos)
        << r.err;
}

TEST(Delivery, TheResumableExampleReadsOnlyNewFilesOnItsNextRun) {
    TempDir dir;
    std::filesystem::copy(std::string(SLUICE_SOURCE_DIR) + "/pipelines", dir / "pipelines",
                          std::filesystem::copy_options::recursive);
    const std::string m = dir / "pipelines/orders_resumable.json";
    ProcessResult first = run_sluice({"run", m, "--report", dir / "r1.json"});
    ASSERT_EQ(first.exit_code, 0) << first.err;
    bj::object r1 = read_checked_report(dir / "r1.json");
    EXPECT_FALSE(r1.at("delivery").at("resumed").as_bool());
    size_t orders = read_lines(dir / "out/orders_resumable/orders.ndjson").size();
    EXPECT_EQ(orders, 6u);
    EXPECT_EQ(read_lines(dir / "out/orders_resumable/dead_letters.ndjson").size(), 1u);

    // A new file that sorts after the one already read.
    dir.write("pipelines/data/z_more_orders.ndjson", "{\"order_id\": 3001, \"amount\": 5}\n");
    ProcessResult second = run_sluice({"run", m, "--report", dir / "r2.json"});
    ASSERT_EQ(second.exit_code, 0) << second.err;
    bj::object r2 = read_checked_report(dir / "r2.json");
    EXPECT_TRUE(r2.at("delivery").at("resumed").as_bool());
    EXPECT_EQ(r2.at("records").at("extracted").to_number<int64_t>(), 1);
    auto lines = read_lines(dir / "out/orders_resumable/orders.ndjson");
    ASSERT_EQ(lines.size(), orders + 1);
    EXPECT_EQ(lines.back(), "{\"order_id\": 3001, \"amount\": 5}");
}

TEST(Delivery, ATimeoutInALoaderThatHoldsRecordsUntilFlushFailsTheRun) {
    // Replacing its instance would lose what the old one held unflushed.
    TempDir dir;
    std::string m = dir.write("m.json", R"({"name":"t","plugin_dirs":[")" + kTestPlugins + R"("],
  "stages":[{"id":"in","kind":"extractor","plugin":"generate","batch_size":10,"config":{"count":100}},
            {"id":"out","kind":"loader","plugin":"probe_sink","timeout_ms":100,"config":{"batch_delay_ms":400}}]})");
    ProcessResult r = run_sluice({"run", m});
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.err.find("stage 'out' (loader probe_sink): timed out after 100 ms in a stage that keeps records until "
                         "it flushes; the records it held cannot be saved"),
              std::string::npos)
        << r.err;
}
