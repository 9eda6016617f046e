// The runtime in process (no sluice subprocess): a pipeline with several
// threads per stage, ordered delivery, acknowledgements, state and the
// memory budget, run through Pipeline directly. Run under ThreadSanitizer by
// the tsan preset.
#include "manifest.hpp"
#include "pipeline.hpp"
#include "record_accounting.hpp"
#include "temp_dir.hpp"

#include <boost/json.hpp>
#include <gtest/gtest.h>

#include <map>

using namespace sluice;
using namespace sluice::test;
namespace bj = boost::json;

namespace {
RunResult run(const std::string &manifest_path) {
    Pipeline p(load_manifest(manifest_path));
    return p.run(RunOptions{});
}
} // namespace

TEST(Runtime, ThreadsOrderedDeliveryStateAndTheBudgetWorkTogether) {
    TempDir dir;
    std::string m = dir.write("m.json", R"({"name":"rt","state_dir":"state","memory_limit_mb":16,
  "defaults":{"threads":3,"queue_capacity":2,"batch_size":100},
  "stages":[
    {"id":"gen","kind":"extractor","plugin":"generate","threads":2,"config":{"count":20000,"invalid_every":10}},
    {"id":"map","kind":"transformer","plugin":"map","config":{"rename":{"user":"user_id"}}},
    {"id":"gate","kind":"validator","plugin":"rules","config":{"rules":[{"field":"email","required":true}]}},
    {"id":"out","kind":"loader","plugin":"file","threads":1,"inputs":["gate.pass"],"config":{"path":"out.ndjson","append":true}},
    {"id":"bad","kind":"loader","plugin":"file","threads":1,"inputs":["gate.fail"],"config":{"path":"bad.ndjson","append":true}}]})");
    RunResult r = run(m);
    ASSERT_EQ(r.exit_code, 0) << r.error;
    EXPECT_TRUE(unaccounted_records(r.report).empty());
    const bj::object &records = r.report.at("records").as_object();
    EXPECT_EQ(records.at("extracted").to_number<int64_t>(), 20000);
    EXPECT_EQ(read_lines(dir / "out.ndjson").size() + read_lines(dir / "bad.ndjson").size(), 20000u);
    EXPECT_EQ(r.delivery.at("acknowledged").to_number<int64_t>(), 20000);
    // A second run has nothing left to read.
    RunResult again = run(m);
    ASSERT_EQ(again.exit_code, 0) << again.error;
    EXPECT_EQ(again.report.at("records").at("extracted").to_number<int64_t>(), 0);
}
