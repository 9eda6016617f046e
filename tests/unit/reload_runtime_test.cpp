// Live reload in process, so that ThreadSanitizer (the tsan preset runs the
// Runtime suite) sees a reload race the running stages: a config change, a
// graph change and refused reloads while records flow.
#include "manifest.hpp"
#include "pipeline.hpp"
#include "temp_dir.hpp"

#include <boost/json.hpp>
#include <gtest/gtest.h>

#include <map>
#include <thread>

using namespace sluice;
using namespace sluice::test;
namespace bj = boost::json;
using namespace std::chrono_literals;

namespace {

std::string manifest(int min_amount, bool copy, int gate_threads = 2) {
    std::string m = R"({"name":"reload","plugin_dirs":[")" + std::string(SLUICE_TEST_PLUGIN_DIR) + R"("],"stages":[
      {"id":"src","kind":"extractor","plugin":"generate","batch_size":50,"config":{"count":15000}},
      {"id":"pace","kind":"loader","plugin":"probe_sink","inputs":["src"],"config":{"batch_delay_ms":4,"durable":true}},
      {"id":"gate","kind":"validator","plugin":"rules","threads":)" +
                    std::to_string(gate_threads) + R"(,"inputs":["src"],
       "config":{"rules":[{"field":"amount","min":)" + std::to_string(min_amount) + R"(}]}},
      {"id":"out","kind":"loader","plugin":"file","inputs":["gate.pass"],"config":{"path":"out.ndjson","append":true}},
      {"id":"rejects","kind":"loader","plugin":"file","inputs":["gate.fail"],"config":{"path":"rejects.ndjson","append":true}})";
    if (copy)
        m += R"(,{"id":"tag","kind":"transformer","plugin":"c_tag","threads":2,"inputs":["gate.pass"]},
      {"id":"copy","kind":"loader","plugin":"file","inputs":["tag"],"config":{"path":"copy.ndjson","append":true}})";
    return m + "]}";
}

} // namespace

TEST(Runtime, ReloadsWhileRecordsFlowLoseNothing) {
    TempDir dir;
    const std::string path = dir / "m.json";
    Pipeline p(parse_manifest(manifest(0, false), path));
    RunResult result;
    std::thread runner([&] { result = p.run(RunOptions{}); });
    while (p.phase() != Pipeline::Phase::running && p.phase() != Pipeline::Phase::finished) std::this_thread::sleep_for(1ms);
    std::this_thread::sleep_for(100ms);

    ReloadOutcome config = p.reload(parse_manifest(manifest(500, false), path));
    EXPECT_TRUE(config.applied) << (config.problems.empty() ? "" : config.problems[0]);
    std::thread reader([&] { // /status while the graph changes
        for (int i = 0; i < 50 && p.phase() == Pipeline::Phase::running; ++i) {
            bj::object live = p.live_report();
            EXPECT_TRUE(live.contains("stages"));
            std::this_thread::sleep_for(5ms);
        }
    });
    ReloadOutcome grown = p.reload(parse_manifest(manifest(500, true), path));
    EXPECT_TRUE(grown.applied) << (grown.problems.empty() ? "" : grown.problems[0]);
    ReloadOutcome refused = p.reload(parse_manifest(manifest(500, true, 3), path));
    EXPECT_FALSE(refused.applied);
    ASSERT_EQ(refused.problems.size(), 1u);
    EXPECT_NE(refused.problems[0].find("stage 'gate': threads changed; that needs a restart"), std::string::npos);
    std::this_thread::sleep_for(100ms);
    ReloadOutcome shrunk = p.reload(parse_manifest(manifest(500, false), path));
    EXPECT_TRUE(shrunk.applied) << (shrunk.problems.empty() ? "" : shrunk.problems[0]);
    reader.join();
    runner.join();
    ASSERT_EQ(result.exit_code, 0) << result.error;

    std::map<int64_t, int> seen;
    for (const char *file : {"out.ndjson", "rejects.ndjson"})
        for (const std::string &line : read_lines(dir / file)) seen[bj::parse(line).at("id").to_number<int64_t>()]++;
    EXPECT_EQ(seen.size(), 15000u);
    for (const auto &[id, n] : seen) ASSERT_EQ(n, 1) << "record " << id;
    // The reloaded rule rejected records; the added stages saw some.
    EXPECT_FALSE(read_lines(dir / "rejects.ndjson").empty());
    EXPECT_FALSE(read_lines(dir / "copy.ndjson").empty());
    // After the run, a reload is refused.
    EXPECT_FALSE(p.reload(parse_manifest(manifest(0, false), path)).applied);
}
