// The Grafana dashboard (packaging/grafana/sluice-dashboard.json) asks only
// for metrics a running sluice serves: every metric its queries name is on
// /metrics of a pipeline that has what the panels show (a gate, an isolated
// stage whose worker dies on a record, an llm stage that spends its token
// budget).
#include "child_process.hpp"
#include "fake_openai_server.hpp"
#include "http_client.hpp"
#include "temp_dir.hpp"

#include <boost/json.hpp>
#include <gtest/gtest.h>

#include <csignal>
#include <regex>
#include <set>
#include <thread>

using namespace sluice::test;
namespace bj = boost::json;
using namespace std::chrono_literals;

namespace {

// The metric names the dashboard's queries use (a histogram's by family).
std::set<std::string> dashboard_metrics() {
    bj::value dashboard = bj::parse(read_file(std::string(SLUICE_SOURCE_DIR) + "/packaging/grafana/sluice-dashboard.json"));
    std::set<std::string> names;
    const std::regex metric(R"(\b((sluice|process)_[a-z0-9_]+)\b)");
    for (const auto &panel : dashboard.at("panels").as_array())
        for (const auto &target : panel.at("targets").as_array()) {
            std::string expr(target.at("expr").as_string());
            for (std::sregex_iterator it(expr.begin(), expr.end(), metric), end; it != end; ++it) {
                std::string name = (*it)[1];
                if (name.size() > 7 && name.compare(name.size() - 7, 7, "_bucket") == 0) name.resize(name.size() - 7);
                names.insert(name);
            }
        }
    return names;
}

} // namespace

TEST(Dashboard, EveryMetricItQueriesIsServed) {
    std::set<std::string> wanted = dashboard_metrics();
    ASSERT_GE(wanted.size(), 15u) << "the dashboard's queries were not read";
    FakeOpenAI fake({"--latency-ms", "5"});
    TempDir dir;
    std::string m = dir.write("m.json", R"({"name":"dash","state_dir":"state","plugin_dirs":[")" + std::string(SLUICE_TEST_PLUGIN_DIR) +
                                            R"("],"stages":[
      {"id":"in","kind":"extractor","plugin":"generate","batch_size":20,"config":{"count":100000,"invalid_every":5}},
      {"id":"shape","kind":"transformer","plugin":"faulty","isolation":"process",
       "config":{"fault":"crash","match":"\"id\":7,"}},
      {"id":"gate","kind":"validator","plugin":"rules","config":{"rules":[{"field":"amount","min":0}]}},
      {"id":"pace","kind":"transformer","plugin":"fault","inputs":["gate.pass"],"config":{"slow_ms":20}},
      {"id":"ai","kind":"enricher","plugin":"llm","on_error":{"dead_letter":"dead"},
       "config":{"base_url":")" + fake.base_url() + R"(","model":"fake-model","prompt":"Classify: {{text}}",
                 "token_budget":300}},
      {"id":"out","kind":"loader","plugin":"null"},
      {"id":"dead","kind":"loader","plugin":"null"}]})");
    ChildProcess p({sluice_binary(), "run", m, "--admin", "127.0.0.1:0"});
    const int admin = port_after(p, "admin endpoint listening on http://127.0.0.1:");
    ASSERT_GT(admin, 0) << p.err_so_far();
    std::set<std::string> missing = wanted;
    std::string metrics;
    for (int i = 0; i < 200 && !missing.empty(); ++i) {
        metrics = http_request(admin, "GET", "/metrics", "", {}, "text/plain", 10).body;
        for (auto it = missing.begin(); it != missing.end();)
            it = metrics.find("# TYPE " + *it + " ") != std::string::npos ? missing.erase(it) : std::next(it);
        if (!missing.empty()) std::this_thread::sleep_for(100ms);
    }
    p.signal(SIGTERM);
    p.wait(60s);
    for (const std::string &name : missing) ADD_FAILURE() << name << " is not on /metrics:\n" << metrics;
    // Rejects are counted by reason, as the table panel shows them.
    EXPECT_NE(metrics.find("sluice_stage_reasons_total{"), std::string::npos);
    EXPECT_NE(metrics.find("reason=\"amount: below the minimum 0\""), std::string::npos) << metrics;
}
