// Commit windows: a loader whose calls each cost a commit
// (SLUICE_CAP_COMMIT_WINDOWS) and that falls behind its input takes the
// batches waiting in its queue in one call (one transaction), up to its
// commit_records; with commit_records 1, or without the capability, it gets
// one call per batch as before. Killing a run mid-window is covered by the delivery and
// exactly-once tests, which run with windows on (the default).
#include "child_process.hpp"
#include "temp_dir.hpp"

#include <boost/json.hpp>
#include <gtest/gtest.h>

using namespace sluice::test;
namespace bj = boost::json;

namespace {

struct SinkFigures {
    int64_t loaded = 0, calls = 0, max_call = 0;
};

// 20000 records in batches of 100 into a sink that takes 20 ms per call.
SinkFigures run_behind(const std::string &window) {
    TempDir dir;
    std::string m = dir.write("m.json", R"({"name":"window","plugin_dirs":[")" + std::string(SLUICE_TEST_PLUGIN_DIR) +
                                            R"("],"stages":[
      {"id":"in","kind":"extractor","plugin":"probe_source","batch_size":100,"config":{"count":20000}},
      {"id":"out","kind":"loader","plugin":"probe_commit_sink",)" + window + R"("config":{"batch_delay_ms":20,"durable":true}}]})");
    ProcessResult r = run_sluice({"run", m, "--report", dir / "r.json"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    bj::value report = bj::parse(read_file(dir / "r.json"));
    SinkFigures f;
    for (const auto &s : report.at("stages").as_array()) {
        if (s.at("id").as_string() != "out") continue;
        f.loaded = s.at("out").to_number<int64_t>();
        f.calls = s.at("counters").at("calls").to_number<int64_t>();
        f.max_call = s.at("counters").at("max_call_records").to_number<int64_t>();
    }
    return f;
}

} // namespace

TEST(CommitWindows, ALoaderBehindItsInputTakesTheWaitingBatchesInOneCall) {
    SinkFigures windowed = run_behind(R"("commit_records":2000,)");
    EXPECT_EQ(windowed.loaded, 20000);
    EXPECT_GT(windowed.max_call, 100) << "waiting batches joined the one taken";
    EXPECT_LE(windowed.max_call, 2000 + 100) << "up to about commit_records (the last batch may pass it)";
    EXPECT_LT(windowed.calls, 200 / 2) << windowed.calls << " calls for 200 batches";

    SinkFigures per_batch = run_behind(R"("commit_records":1,)");
    EXPECT_EQ(per_batch.loaded, 20000);
    EXPECT_EQ(per_batch.max_call, 100);
    EXPECT_EQ(per_batch.calls, 200);
}

TEST(CommitWindows, ALoaderThatDoesNotAskForThemGetsACallPerBatch) {
    TempDir dir;
    std::string m = dir.write("m.json", R"({"name":"window","plugin_dirs":[")" + std::string(SLUICE_TEST_PLUGIN_DIR) +
                                            R"("],"stages":[
      {"id":"in","kind":"extractor","plugin":"probe_source","batch_size":100,"config":{"count":3000}},
      {"id":"out","kind":"loader","plugin":"probe_sink","config":{"batch_delay_ms":10,"durable":true}}]})");
    ProcessResult r = run_sluice({"run", m, "--report", dir / "r.json"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    bj::value report = bj::parse(read_file(dir / "r.json"));
    EXPECT_EQ(report.at("stages").at(1).at("counters").at("calls").to_number<int64_t>(), 30);
    EXPECT_EQ(report.at("stages").at(1).at("counters").at("max_call_records").to_number<int64_t>(), 100);
}

TEST(CommitWindows, OnlyLoadersHaveThem) {
    TempDir dir;
    std::string m = dir.write("m.json", R"({"name":"window","stages":[
      {"id":"in","kind":"extractor","plugin":"generate","commit_records":10,"config":{"count":10}},
      {"id":"out","kind":"loader","plugin":"null","commit_bytes":0}]})");
    ProcessResult r = run_sluice({"validate", m});
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_NE(r.err.find(m + ": /stages/0/commit_records: commit windows are for loaders (the stage is not one)"),
              std::string::npos) << r.err;
    EXPECT_NE(r.err.find(m + ": /stages/1/commit_bytes: expected a positive integer"), std::string::npos) << r.err;
}
