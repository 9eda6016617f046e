// End-to-end: the sluice binary run as a user runs it.
#include "child_process.hpp"
#include "record_accounting.hpp"
#include "temp_dir.hpp"

#include <boost/json.hpp>
#include <gtest/gtest.h>

#include <csignal>
#include <filesystem>
#include <set>
#include <thread>

using namespace sluice::test;
namespace bj = boost::json;
using namespace std::chrono_literals;

namespace {

const std::string kTestPlugins = SLUICE_TEST_PLUGIN_DIR;
const std::string kBadPlugins = SLUICE_BAD_PLUGIN_DIR;
const std::string kSource = SLUICE_SOURCE_DIR;

// Every report a test reads is also checked for lost records.
bj::object report_of(const std::string &path) { return read_checked_report(path); }

int64_t num(const bj::object &o, const char *key) { return o.at(key).to_number<int64_t>(); }

std::string line_manifest(const std::string &extractor, const std::string &middle, const std::string &loader,
                          const std::string &extra = "") {
    return R"({"name":"t","plugin_dirs":[")" + kTestPlugins + R"("],)" + extra + R"("stages":[)" + extractor + "," +
           (middle.empty() ? "" : middle + ",") + loader + "]}";
}

} // namespace

TEST(Cli, VersionHelpAndUsageErrors) {
    ProcessResult v = run_sluice({"--version"});
    EXPECT_EQ(v.exit_code, 0);
    EXPECT_EQ(v.out.rfind("sluice ", 0), 0u);
    EXPECT_NE(v.out.find("plugin ABI 1.5"), std::string::npos);
    for (const char *cmd : {"run", "validate", "plugins"}) {
        ProcessResult h = run_sluice({cmd, "--help"});
        EXPECT_EQ(h.exit_code, 0) << cmd;
        EXPECT_NE(h.out.find(std::string("usage: sluice ") + cmd), std::string::npos) << h.out;
    }
    EXPECT_EQ(run_sluice({"--help"}).exit_code, 0);
    ProcessResult u = run_sluice({"frobnicate"});
    EXPECT_EQ(u.exit_code, 2);
    EXPECT_NE(u.err.find("sluice: unknown command 'frobnicate'"), std::string::npos);
    ProcessResult m = run_sluice({"run"});
    EXPECT_EQ(m.exit_code, 2);
    EXPECT_NE(m.err.find("'run' needs a MANIFEST"), std::string::npos);
    ProcessResult o = run_sluice({"run", "x.json", "--bogus"});
    EXPECT_EQ(o.exit_code, 2);
    EXPECT_NE(o.err.find("unknown option '--bogus' for 'run'"), std::string::npos);
    ProcessResult l = run_sluice({"run", "x.json", "--log-level", "loud"});
    EXPECT_EQ(l.exit_code, 2);
    EXPECT_NE(l.err.find("--log-level: unknown level 'loud'"), std::string::npos);
}

TEST(Cli, PluginsListsTheBundledPluginsWithTheirConfig) {
    ProcessResult p = run_sluice({"plugins"});
    ASSERT_EQ(p.exit_code, 0) << p.err;
    for (const char *head : {"file (extractor) 1.0.0  ABI 1.5", "generate (extractor)", "map (transformer)",
                             "route (transformer)", "rules (validator)", "file (loader)", "null (loader)", "llm (enricher)",
                             "llm_extract (transformer)", "text (enricher)", "sqlite (extractor)", "sqlite (loader)", "postgres (extractor)", "postgres (loader)",
                             "documents (extractor)", "http (extractor)", "http (loader)", "redis (extractor)",
                             "redis (loader)", "kafka (extractor)", "kafka (loader)"})
        EXPECT_NE(p.out.find(head), std::string::npos) << head << "\n" << p.out;
    EXPECT_NE(p.out.find("    path "), std::string::npos);
    EXPECT_NE(p.out.find("outputs: pass fail"), std::string::npos);
    EXPECT_EQ(p.out.find("not a usable plugin"), std::string::npos) << p.out;

    ProcessResult j = run_sluice({"plugins", "--json", "--path", kBadPlugins});
    ASSERT_EQ(j.exit_code, 0);
    bj::object o = bj::parse(j.out).as_object();
    EXPECT_EQ(o.at("plugins").as_array().size(), 21u);
    EXPECT_EQ(o.at("problems").as_array().size(), 6u) << "the bad plugins are reported, not hidden";
}

TEST(Cli, QuickstartProducesTheExpectedOutputAndReport) {
    TempDir dir;
    std::filesystem::copy(kSource + "/pipelines", dir / "pipelines", std::filesystem::copy_options::recursive);
    ProcessResult r = run_sluice({"run", dir / "pipelines/quickstart.json", "--report", dir / "report.json"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(read_file(dir / "out/quickstart/orders.ndjson"), read_file(kSource + "/tests/e2e/expected/quickstart.ndjson"));
    bj::object report = report_of(dir / "report.json");
    EXPECT_EQ(report.at("status").as_string(), "completed");
    const bj::object &rec = report.at("records").as_object();
    EXPECT_EQ(num(rec, "extracted"), 15);
    EXPECT_EQ(num(rec, "loaded"), 9);
    EXPECT_EQ(num(rec, "rejected"), 5);
    EXPECT_EQ(num(rec, "errors"), 2) << "one unreadable CSV row, one failed cast";
    EXPECT_EQ(num(stage_of(report, "quality"), "rejected"), 5);
    const bj::object &quality = report.at("quality").as_object();
    EXPECT_DOUBLE_EQ(quality.at("quality_score").to_number<double>(), 9.0 / 15.0) << "15 extracted, 5 rejected, 1 failed";
    EXPECT_DOUBLE_EQ(quality.at("error_rate").to_number<double>(), 2.0 / 16.0) << "2 errors in 16 rows";
    EXPECT_EQ(num(rec, "unreadable"), 1);
    EXPECT_EQ(quality.at("gates").as_array()[0].at("passed").to_number<int64_t>(), 9);
    EXPECT_EQ(quality.at("gates").as_array()[0].at("failed").to_number<int64_t>(), 5);
    EXPECT_NE(r.err.find("quality score 0.600 (9 of 15 extracted records passed every gate), error rate 0.125"),
              std::string::npos) << r.err;
    EXPECT_EQ(stage_of(report, "quality").at("reject_reasons").as_array()[0].at("count").to_number<int64_t>(), 2);
    // The table on stderr shows the same, and the bad rows are logged with file and line.
    EXPECT_NE(r.err.find("pipeline 'quickstart' completed"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("15 extracted, 9 loaded, 5 rejected, 2 errors"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("orders.csv:14): expected 7 fields (as in the header), found 8"), std::string::npos) << r.err;
}

TEST(Cli, ValidatePrintsTheOutlineAndRunsNothing) {
    TempDir dir;
    std::string m = dir.write("m.json", line_manifest(R"({"id":"in","kind":"extractor","plugin":"file","config":{"path":"nothing-here/*.csv"}})",
                                                      "", R"({"id":"out","kind":"loader","plugin":"file","config":{"path":"o.ndjson"}})"));
    ProcessResult r = run_sluice({"validate", m});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.out.find("  in  [extractor file 1.0.0]  threads=1 batch=1024\n      -> out\n      library "),
              std::string::npos)
        << r.out;
    EXPECT_NE(r.out.find("/sluice-file.so sha256 "), std::string::npos) << "which file runs, and its hash";
    EXPECT_NE(r.out.find("\n  out  [loader file 1.0.0]"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("ok: " + m + " is valid"), std::string::npos);
    EXPECT_FALSE(exists(dir / "o.ndjson"));
    EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir.path()), std::filesystem::directory_iterator{}), 1)
        << "validate must not create files";
}

TEST(Cli, EachKindOfSetupMistakeGetsItsOneLineMessage) {
    TempDir dir;
    const std::string gen = R"({"id":"in","kind":"extractor","plugin":"generate","config":{"count":10}})";
    const std::string out = R"({"id":"out","kind":"loader","plugin":"null"})";
    struct Case {
        std::string middle, expected;
    } cases[] = {
        {R"({"id":"x","kind":"transformer","plugin":"generate"})",
         "/stages/1/plugin: plugin 'generate' in "},
        {R"({"id":"x","kind":"transformer","plugin":"mapp"})", "/stages/1/plugin: no transformer named 'mapp' in "},
        {R"({"id":"x","kind":"transformer","plugin":"x","library":")" + kBadPlugins + R"(/not_elf.so"})",
         "/stages/1/library: " + kBadPlugins + "/not_elf.so: not a loadable shared library: "},
        {R"({"id":"x","kind":"transformer","plugin":"x","library":")" + kBadPlugins + R"(/no_entry.so"})",
         "/stages/1/library: " + kBadPlugins + "/no_entry.so: not a Sluice plugin: it does not export sluice_plugin_entry()"},
        {R"({"id":"x","kind":"transformer","plugin":"x","library":")" + kBadPlugins + R"(/undefined_symbol.so"})",
         "/stages/1/library: " + kBadPlugins + "/undefined_symbol.so: cannot be loaded, it needs a symbol nothing "
         "provides (undefined symbol: sluice_test_function_nobody_defines)"},
        {R"({"id":"x","kind":"transformer","plugin":"from_elsewhere","library":")" + kBadPlugins + R"(/abi2.so"})",
         "/stages/1/library: " + kBadPlugins + "/abi2.so: built for Sluice ABI 2.0, but this host speaks ABI 1.5"},
        {R"({"id":"x","kind":"transformer","plugin":"map","config":{"renam":{}}})",
         "/stages/1/config/renam: unknown key (expected one of: rename, copy, default, cast, set, drop, on_cast_error)"},
        {R"({"id":"x","kind":"transformer","plugin":"map","config":{"cast":{"a":"date"}}})",
         "/stages/1/config/cast/a: \"date\" is not one of \"string\", \"int\", \"float\", \"bool\""},
        {R"({"id":"x","kind":"validator","plugin":"rules","config":{"rules":[{"field":"a","regex":"("}]}})",
         "/stages/1/config: rules[0].regex: invalid pattern: missing ): ("},
        {R"({"id":"x","kind":"transformer","plugin":"map","threads":0})", "/stages/1/threads: expected a positive integer"},
    };
    for (const Case &c : cases) {
        std::string m = dir.write("m.json", line_manifest(gen, c.middle, out));
        for (const char *cmd : {"validate", "run"}) {
            ProcessResult r = run_sluice({cmd, m});
            EXPECT_EQ(r.exit_code, 2) << cmd << " " << c.middle << "\n" << r.err;
            EXPECT_EQ(r.err.rfind(m + ": ", 0), 0u) << r.err;
            EXPECT_NE(r.err.find(c.expected), std::string::npos) << "expected: " << c.expected << "\ngot: " << r.err;
            EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << "one line: " << r.err;
        }
    }
    std::string single = dir.write("s.json", line_manifest(gen, "", R"({"id":"out","kind":"loader","plugin":"file","threads":2,"config":{"path":"o"}})"));
    ProcessResult r = run_sluice({"validate", single});
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_NE(r.err.find("/stages/1/threads: loader 'file' runs on a single worker"), std::string::npos) << r.err;

    ProcessResult missing = run_sluice({"run", dir / "absent.json"});
    EXPECT_EQ(missing.exit_code, 2);
    EXPECT_NE(missing.err.find("absent.json: cannot open manifest: No such file or directory"), std::string::npos);
}

TEST(Cli, APluginThatCannotBeFoundNamesTheLibrariesRefusedOnTheWay) {
    // A .so in plugin_dirs that is refused (here: built for ABI 2) may well
    // be the plugin the manifest asks for: the one line says why it was not.
    TempDir dir;
    std::string m = dir.write("m.json", R"({"plugin_dirs":[")" + kBadPlugins + R"("],"stages":[
    {"id":"in","kind":"extractor","plugin":"generate","config":{"count":1}},
    {"id":"x","kind":"transformer","plugin":"abi2"},
    {"id":"out","kind":"loader","plugin":"null"}]})");
    for (const char *cmd : {"validate", "run"}) {
        ProcessResult r = run_sluice({cmd, m});
        EXPECT_EQ(r.exit_code, 2) << r.err;
        EXPECT_NE(r.err.find("/stages/1/plugin: no transformer named 'abi2' in "), std::string::npos) << r.err;
        EXPECT_NE(r.err.find("; refused " + kBadPlugins + "/abi2.so: built for Sluice ABI 2.0, but this host speaks "
                             "ABI 1.5 (the major versions must match); refused "),
                  std::string::npos)
            << "the likely one first, then the others: " << r.err;
        EXPECT_NE(r.err.find("no_entry.so: not a Sluice plugin"), std::string::npos) << r.err;
        EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << "one line: " << r.err;
    }
}

TEST(Cli, APluginWrittenInPlainCRunsInAPipeline) {
    TempDir dir;
    std::string m = dir.write("m.json", line_manifest(R"({"id":"in","kind":"extractor","plugin":"generate","config":{"count":3000}})",
                                                      R"({"id":"tag","kind":"transformer","plugin":"c_tag","threads":2,"config":{"value":"plain-c"}})",
                                                      R"({"id":"out","kind":"loader","plugin":"file","config":{"path":"o.ndjson"}})"));
    ProcessResult r = run_sluice({"run", m});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    auto lines = read_lines(dir / "o.ndjson");
    ASSERT_EQ(lines.size(), 3000u);
    for (size_t i = 0; i < lines.size(); ++i) {
        ASSERT_EQ(lines[i].rfind("{\"id\":" + std::to_string(i + 1) + ",", 0), 0u) << "in order: " << lines[i];
        ASSERT_NE(lines[i].find(",\"tagged_by\":\"plain-c\"}"), std::string::npos) << lines[i];
    }
}

// c_tag sets bit 4 and its schema's default differs from its code's: a
// plugin built for 1.0 or 1.1 gets its config as written (the bit means
// nothing there), one built for today's ABI gets the schema's default
// (SLUICE_CAP_CONFIG_DEFAULTS).
TEST(Cli, PluginsBuiltForEachOlderMinorRunInAPipeline) {
    const std::pair<std::string, std::string> builds[] = {
        {kTestPlugins + "/c_tag.so", "c"},
        {std::string(SLUICE_ABI_V1_1_PLUGIN_DIR) + "/c_tag.so", "c"},
        {std::string(SLUICE_ABI_CURRENT_PLUGIN_DIR) + "/c_tag.so", "from-the-schema"}};
    for (const auto &[lib, tag] : builds) {
        TempDir dir;
        std::string m = dir.write("m.json", line_manifest(R"({"id":"in","kind":"extractor","plugin":"generate","config":{"count":10}})",
                                                          R"({"id":"tag","kind":"transformer","plugin":"c_tag","library":")" + lib + R"("})",
                                                          R"({"id":"out","kind":"loader","plugin":"file","config":{"path":"o.ndjson"}})"));
        ProcessResult r = run_sluice({"run", m});
        ASSERT_EQ(r.exit_code, 0) << lib << ": " << r.err;
        auto lines = read_lines(dir / "o.ndjson");
        ASSERT_EQ(lines.size(), 10u) << lib;
        for (const auto &line : lines) EXPECT_NE(line.find(",\"tagged_by\":\"" + tag + "\"}"), std::string::npos) << lib << ": " << line;
    }
}

TEST(Cli, ParallelStagesKeepExtractionOrderAtTheLoader) {
    TempDir dir;
    auto run = [&](int threads, const std::string &out) {
        std::string m = dir.write("m" + std::to_string(threads) + ".json",
            line_manifest(R"({"id":"in","kind":"extractor","plugin":"generate","batch_size":100,"config":{"count":50000,"invalid_every":9}})",
                          R"({"id":"map","kind":"transformer","plugin":"map","threads":)" + std::to_string(threads) +
                              R"(,"config":{"rename":{"user":"user_id"},"drop":["text"]}},
                             {"id":"check","kind":"validator","plugin":"rules","threads":)" + std::to_string(threads) +
                              R"(,"config":{"rules":[{"field":"amount","min":0}]}})",
                          R"({"id":"out","kind":"loader","plugin":"file","config":{"path":")" + out + R"("}})"));
        ProcessResult r = run_sluice({"run", m, "--report", dir / (out + ".report")});
        EXPECT_EQ(r.exit_code, 0) << r.err;
    };
    run(1, "one.ndjson");
    run(3, "three.ndjson");
    std::string one = read_file(dir / "one.ndjson");
    EXPECT_EQ(std::count(one.begin(), one.end(), '\n'), 50000 - 50000 / 9);
    EXPECT_EQ(one, read_file(dir / "three.ndjson"));
    bj::object rep = report_of(dir / "three.ndjson.report");
    EXPECT_EQ(num(stage_of(rep, "check"), "rejected"), 50000 / 9);
    EXPECT_EQ(num(rep.at("records").as_object(), "extracted"),
              num(rep.at("records").as_object(), "loaded") + num(rep.at("records").as_object(), "rejected"));
}

TEST(Cli, AConcurrentLoaderIsFlushedOnceAfterAllItsWorkers) {
    TempDir dir;
    std::string m = dir.write("m.json", line_manifest(R"({"id":"in","kind":"extractor","plugin":"generate","threads":2,"batch_size":50,"config":{"count":20000}})",
                                                      "", R"({"id":"out","kind":"loader","plugin":"null","threads":4})"));
    for (int run = 0; run < 5; ++run) {
        ProcessResult r = run_sluice({"run", m, "--report", dir / "r.json"});
        ASSERT_EQ(r.exit_code, 0) << r.err;
        bj::object report = report_of(dir / "r.json");
        const bj::object &out = stage_of(report, "out");
        EXPECT_EQ(out.at("counters").at("records_discarded").to_number<int64_t>(), 20000);
        EXPECT_EQ(num(out, "in"), 20000);
    }
}

TEST(Cli, BackpressureBoundsRecordsInFlight) {
    TempDir dir;
    // A fast source and a slow sink (2 ms a batch): with a queue of 2
    // batches of 100, the source must wait, so at most a handful of batches
    // are ever between them, however many records there are.
    std::string m = dir.write("m.json", line_manifest(R"({"id":"in","kind":"extractor","plugin":"probe_source","batch_size":100,"config":{"count":30000}})",
                                                      "", R"({"id":"out","kind":"loader","plugin":"probe_sink","queue_capacity":2,"config":{"batch_delay_ms":2}})"));
    ProcessResult r = run_sluice({"run", m, "--report", dir / "r.json"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    bj::object rep = report_of(dir / "r.json");
    const bj::object &sink = stage_of(rep, "out");
    EXPECT_EQ(num(sink, "in"), 30000);
    EXPECT_LE(num(sink, "queue_peak"), 2);
    int64_t in_flight = sink.at("counters").at("max_in_flight").to_number<int64_t>();
    EXPECT_GT(in_flight, 0);
    EXPECT_LE(in_flight, 500) << "queue (2) + one batch being pushed + one being loaded, 100 records each";
}

TEST(Cli, SigtermStopsExtractionDrainsFlushesAndExitsZero) {
    TempDir dir;
    std::string m = dir.write("m.json", line_manifest(R"({"id":"in","kind":"extractor","plugin":"probe_source","batch_size":100,"config":{"count":1000000000,"pull_delay_ms":5}})",
                                                      R"({"id":"map","kind":"transformer","plugin":"map","threads":2,"config":{"set":{"k":1}}})",
                                                      R"({"id":"out","kind":"loader","plugin":"file","config":{"path":"o.ndjson"}})"));
    ChildProcess child({sluice_binary(), "run", m, "--report", dir / "r.json"});
    // Signal once records are flowing (the temp file has some), however
    // slow the machine is to start.
    auto flowing = [&] {
        for (const auto &f : std::filesystem::directory_iterator(dir.path()))
            if (f.path().filename().string().rfind("o.ndjson.tmp-", 0) == 0 && f.file_size() > 0) return true;
        return false;
    };
    for (int i = 0; i < 400 && !flowing(); ++i) std::this_thread::sleep_for(50ms);
    ASSERT_TRUE(flowing()) << child.err_so_far();
    EXPECT_FALSE(exists(dir / "o.ndjson")) << "not complete yet";
    child.signal(SIGTERM);
    ProcessResult r = child.wait(20s);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.err.find("received SIGTERM: stopping extraction"), std::string::npos) << r.err;
    bj::object rep = report_of(dir / "r.json");
    EXPECT_EQ(rep.at("status").as_string(), "stopped");
    auto lines = read_lines(dir / "o.ndjson");
    EXPECT_GT(lines.size(), 0u);
    EXPECT_EQ(int64_t(lines.size()), num(rep.at("records").as_object(), "extracted")) << "everything read was loaded";
    for (size_t i = 0; i < lines.size(); ++i)
        ASSERT_EQ(lines[i], "{\"n\":" + std::to_string(i) + ",\"k\":1}");
}

TEST(Cli, ASecondSignalExitsAtOnce) {
    TempDir dir;
    std::string m = dir.write("m.json", line_manifest(R"({"id":"in","kind":"extractor","plugin":"probe_source","batch_size":10,"config":{"count":1000000000}})",
                                                      "", R"({"id":"out","kind":"loader","plugin":"probe_sink","queue_capacity":64,"config":{"batch_delay_ms":500}})"));
    ChildProcess child({sluice_binary(), "run", m, "--log-level", "info"});
    ASSERT_TRUE(child.wait_for_err(": running ")) << child.err_so_far();
    std::this_thread::sleep_for(300ms);
    child.signal(SIGINT);
    std::this_thread::sleep_for(200ms);
    child.signal(SIGINT);
    auto start = std::chrono::steady_clock::now();
    ProcessResult r = child.wait(10s);
    EXPECT_EQ(r.exit_code, 128 + SIGINT) << r.err;
    EXPECT_LT(std::chrono::steady_clock::now() - start, 2s) << "must not drain 64 slow batches";
    EXPECT_NE(r.err.find("second signal, exiting without draining"), std::string::npos) << r.err;
}

TEST(Cli, AFatalPluginErrorFailsTheRunAndLeavesNoOutput) {
    TempDir dir;
    std::string m = dir.write("m.json", line_manifest(R"({"id":"in","kind":"extractor","plugin":"generate","batch_size":100,"config":{"count":5000}})",
                                                      R"({"id":"boom","kind":"transformer","plugin":"fault","config":{"fatal_at":2500}})",
                                                      R"({"id":"out","kind":"loader","plugin":"file","config":{"path":"o.ndjson"}})"));
    ProcessResult r = run_sluice({"run", m, "--report", dir / "r.json"});
    EXPECT_EQ(r.exit_code, 1) << r.err;
    EXPECT_NE(r.err.find("stage 'boom' (transformer fault): injected fatal error at record 2500"), std::string::npos) << r.err;
    EXPECT_FALSE(exists(dir / "o.ndjson"));
    for (const auto &e : std::filesystem::directory_iterator(dir.path()))
        EXPECT_EQ(e.path().string().find(".tmp-"), std::string::npos) << "temp file left: " << e.path();
    bj::object rep = report_of(dir / "r.json");
    EXPECT_EQ(rep.at("status").as_string(), "failed");
    EXPECT_NE(std::string(rep.at("error").as_string()).find("injected fatal error"), std::string::npos);
}

TEST(Cli, FailedBatchesAndRecordsTakeTheErrorPathAndAreCounted) {
    TempDir dir;
    // throw_at makes the batch holding record 250 fail as a whole (the C++
    // helper turns the exception into SLUICE_ERROR); fail_every fails single
    // records. Nothing else is lost.
    std::string m = dir.write("m.json", line_manifest(R"({"id":"in","kind":"extractor","plugin":"generate","batch_size":100,"config":{"count":1000}})",
                                                      R"({"id":"faulty","kind":"transformer","plugin":"fault","config":{"throw_at":250,"fail_every":10}})",
                                                      R"({"id":"out","kind":"loader","plugin":"file","config":{"path":"o.ndjson"}})"));
    ProcessResult r = run_sluice({"run", m, "--report", dir / "r.json"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    bj::object rep = report_of(dir / "r.json");
    const bj::object &f = stage_of(rep, "faulty");
    EXPECT_EQ(num(f, "errors"), 100 + 90);
    EXPECT_EQ(read_lines(dir / "o.ndjson").size(), 810u);
    EXPECT_EQ(num(rep.at("records").as_object(), "loaded") + num(rep.at("records").as_object(), "errors"), 1000);
    EXPECT_NE(r.err.find("injected exception at record 250"), std::string::npos) << r.err;
}

TEST(Cli, ALoaderThatCannotStartFailsBeforeReading) {
    TempDir dir;
    std::string m = dir.write("m.json", line_manifest(R"({"id":"in","kind":"extractor","plugin":"generate","config":{"count":10}})", "",
                                                      R"({"id":"out","kind":"loader","plugin":"file","config":{"path":"/proc/no/such/o.ndjson"}})"));
    ProcessResult r = run_sluice({"run", m});
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.err.find("stage 'out' (loader file) failed to start: cannot create directory /proc/no/such"), std::string::npos) << r.err;
}

TEST(Cli, GraphFanInFanOutAndChainedGates) {
    TempDir dir;
    dir.write("a.csv", "id,email,amount\n1,a@x.org,5\n2,,7\n3,c@x.org,-1\n");
    dir.write("b.ndjson", "{\"id\":4,\"email\":\"d@x.org\",\"amount\":9}\n{\"id\":5,\"email\":\"e@x.org\",\"amount\":-2}\n");
    std::string m = dir.write("m.json", R"({"name":"g","stages":[
        {"id":"csv","kind":"extractor","plugin":"file","config":{"path":"a.csv","infer_types":true}},
        {"id":"nd","kind":"extractor","plugin":"file","config":{"path":"b.ndjson"}},
        {"id":"has_email","kind":"validator","plugin":"rules","inputs":["csv","nd"],
         "config":{"rules":[{"field":"email","required":true}]}},
        {"id":"positive","kind":"validator","plugin":"rules","inputs":["has_email.pass"],
         "config":{"rules":[{"field":"amount","min":0}]}},
        {"id":"good","kind":"loader","plugin":"file","inputs":["positive.pass"],"config":{"path":"good.ndjson"}},
        {"id":"good_csv","kind":"loader","plugin":"file","inputs":["positive.pass"],"config":{"path":"good.csv","columns":["id","amount"]}},
        {"id":"rejects","kind":"loader","plugin":"file","inputs":["has_email.fail","positive.fail"],
         "config":{"path":"rejects.ndjson","attributes_field":"_meta"}}]})");
    ProcessResult r = run_sluice({"run", m, "--report", dir / "r.json"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    auto sorted = [](std::vector<std::string> v) {
        std::sort(v.begin(), v.end());
        return v;
    };
    EXPECT_EQ(sorted(read_lines(dir / "good.ndjson")),
              (std::vector<std::string>{R"({"id":1,"email":"a@x.org","amount":5})", R"({"id":4,"email":"d@x.org","amount":9})"}));
    EXPECT_EQ(sorted(read_lines(dir / "good.csv")), (std::vector<std::string>{"1,5", "4,9", "id,amount"}));
    auto rejects = read_lines(dir / "rejects.ndjson");
    ASSERT_EQ(rejects.size(), 3u);
    std::string all;
    for (const auto &l : rejects) all += l + "\n";
    EXPECT_NE(all.find(R"("reject_reason":"email: is null")"), std::string::npos) << all;
    EXPECT_NE(all.find(R"("reject_reason":"amount: below the minimum 0")"), std::string::npos) << all;
    EXPECT_NE(all.find(R"("source_line":"4")"), std::string::npos) << all;
    bj::object rep = report_of(dir / "r.json");
    EXPECT_EQ(num(stage_of(rep, "has_email"), "in"), 5);
    EXPECT_EQ(num(stage_of(rep, "has_email"), "rejected"), 1);
    EXPECT_EQ(num(stage_of(rep, "positive"), "in"), 4);
    EXPECT_EQ(num(stage_of(rep, "positive"), "rejected"), 2);
    EXPECT_EQ(num(stage_of(rep, "rejects"), "in"), 3);
    // Every record is accounted for on each branch.
    EXPECT_EQ(num(stage_of(rep, "good"), "in") + num(stage_of(rep, "rejects"), "in"), 5);
    EXPECT_EQ(num(stage_of(rep, "good_csv"), "in"), num(stage_of(rep, "good"), "in"));

    ProcessResult v = run_sluice({"validate", m});
    ASSERT_EQ(v.exit_code, 0) << v.err;
    EXPECT_NE(v.out.find("      pass -> good, good_csv\n      fail -> rejects\n"), std::string::npos) << v.out;
    ProcessResult d = run_sluice({"graph", m});
    ASSERT_EQ(d.exit_code, 0) << d.err;
    EXPECT_EQ(d.out.rfind("digraph \"g\" {", 0), 0u) << d.out;
    EXPECT_NE(d.out.find("\"positive\" -> \"good_csv\" [label=\"pass\"];"), std::string::npos) << d.out;
    EXPECT_NE(d.out.find("\"csv\" -> \"has_email\";"), std::string::npos) << d.out;
    EXPECT_NE(d.out.find("\"has_email\" [shape=diamond, label=\"has_email\\nvalidator rules\"];"), std::string::npos) << d.out;
}

TEST(Cli, AnInputNamingAMissingOutputIsRefused) {
    TempDir dir;
    std::string m = dir.write("m.json", R"({"stages":[
        {"id":"in","kind":"extractor","plugin":"generate","config":{"count":1}},
        {"id":"gate","kind":"validator","plugin":"rules","config":{"rules":[{"field":"id","required":true}]}},
        {"id":"out","kind":"loader","plugin":"null","inputs":["gate.passed"]}]})");
    ProcessResult r = run_sluice({"validate", m});
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_EQ(r.err, m + ": /stages/2/inputs/0: stage 'gate' has no output 'passed' (validator 'rules' has: pass, fail)\n");
}

TEST(Cli, RouteSendsRecordsToTheStagesReadingItsOutputs) {
    TempDir dir;
    std::string m = dir.write("m.json", R"({"stages":[
        {"id":"in","kind":"extractor","plugin":"generate","config":{"count":3000}},
        {"id":"split","kind":"transformer","plugin":"route","threads":2,"config":{"routes":[
            {"output":"eu","when":{"field":"country","in":["DE","FR","NL","SE","ES","IT"]}},
            {"output":"americas","when":{"field":"country","in":["US","CA","BR"]}}]}},
        {"id":"eu","kind":"loader","plugin":"file","inputs":["split.eu"],"config":{"path":"eu.ndjson"}},
        {"id":"am","kind":"loader","plugin":"file","inputs":["split.americas"],"config":{"path":"am.ndjson"}},
        {"id":"rest","kind":"loader","plugin":"file","inputs":["split.default"],"config":{"path":"rest.ndjson"}}]})");
    ProcessResult r = run_sluice({"run", m, "--report", dir / "r.json"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    auto eu = read_lines(dir / "eu.ndjson"), am = read_lines(dir / "am.ndjson"), rest = read_lines(dir / "rest.ndjson");
    EXPECT_EQ(eu.size() + am.size() + rest.size(), 3000u);
    for (const auto &l : eu) ASSERT_NE(std::string("DE FR NL SE ES IT").find(l.substr(l.find("\"country\":\"") + 11, 2)), std::string::npos) << l;
    for (const auto &l : rest) ASSERT_NE(std::string("GB JP IN").find(l.substr(l.find("\"country\":\"") + 11, 2)), std::string::npos) << l;
    EXPECT_GT(am.size(), 0u);
    ProcessResult bad = run_sluice({"validate", dir.write("b.json", R"({"stages":[
        {"id":"in","kind":"extractor","plugin":"generate","config":{"count":1}},
        {"id":"split","kind":"transformer","plugin":"route","config":{"routes":[{"output":"eu","when":{"field":"c","equals":1}}]}},
        {"id":"x","kind":"loader","plugin":"null","inputs":["split.us"]}]})")});
    EXPECT_EQ(bad.exit_code, 2);
    EXPECT_NE(bad.err.find("/stages/2/inputs/0: stage 'split' has no output 'us' (transformer 'route' has: eu, default)"), std::string::npos) << bad.err;
}

TEST(Cli, TheGraphExampleRuns) {
    TempDir dir;
    std::filesystem::copy(kSource + "/pipelines", dir / "pipelines", std::filesystem::copy_options::recursive);
    ProcessResult r = run_sluice({"run", dir / "pipelines/orders_graph.json", "--report", dir / "r.json"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(read_lines(dir / "out/orders_graph/orders.ndjson").size(), 12u);
    EXPECT_EQ(read_lines(dir / "out/orders_graph/orders.csv").size(), 13u) << "header + 12";
    auto rejects = read_lines(dir / "out/orders_graph/rejects.ndjson");
    EXPECT_EQ(rejects.size(), 9u);
    for (const auto &line : rejects) EXPECT_NE(line.find("\"reject_reason\":"), std::string::npos) << line;
    // A CSV row with too many fields, a broken NDJSON line, an amount that
    // is not a number: each in the dead-letter file with its stage and error.
    auto dead = read_lines(dir / "out/orders_graph/dead_letters.ndjson");
    ASSERT_EQ(dead.size(), 3u);
    std::multiset<std::string> stages;
    for (const auto &line : dead) stages.insert(std::string(bj::parse(line).at("stage").as_string()));
    EXPECT_EQ(stages, (std::multiset<std::string>{"clean", "shop_csv", "web_ndjson"}));
    bj::object rep = report_of(dir / "r.json");
    const bj::object &rec = rep.at("records").as_object();
    EXPECT_EQ(num(rec, "extracted"), 22);
    EXPECT_EQ(num(rec, "unreadable"), 2);
    // Each record extracted is passed, rejected by a gate, or failed.
    EXPECT_EQ(num(stage_of(rep, "orders"), "in") + num(stage_of(rep, "rejects"), "in") + num(stage_of(rep, "clean"), "errors"), 22);
    EXPECT_EQ(num(rep.at("records").as_object(), "dead_lettered"), 3);
    EXPECT_EQ(rep.at("quality").at("gates").as_array().size(), 2u);
}

namespace {
std::string fault_pipeline(const std::string &fault_config, const std::string &on_error, int count = 1000,
                           const std::string &fault_stage_extra = "") {
    return line_manifest(R"({"id":"in","kind":"extractor","plugin":"generate","batch_size":100,"config":{"count":)" +
                             std::to_string(count) + "}}",
                         R"({"id":"faulty","kind":"transformer","plugin":"fault","config":)" + fault_config +
                             R"(,"on_error":)" + on_error + fault_stage_extra + "}",
                         R"({"id":"out","kind":"loader","plugin":"file","config":{"path":"o.ndjson"}})" +
                             std::string(on_error.find("dlq") == std::string::npos ? "" : R"(,
                            {"id":"dlq","kind":"loader","plugin":"file","config":{"path":"dead.ndjson"}})"));
}
} // namespace

TEST(Cli, DeadLettersHoldTheRecordTheStageTheErrorAndTheAttempts) {
    TempDir dir;
    std::string m = dir.write("m.json", fault_pipeline(R"({"fail_every":10})", R"({"dead_letter":"dlq"})"));
    ProcessResult r = run_sluice({"run", m, "--report", dir / "r.json"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(read_lines(dir / "o.ndjson").size(), 900u);
    auto dead = read_lines(dir / "dead.ndjson");
    ASSERT_EQ(dead.size(), 100u);
    bj::object d = bj::parse(dead[0]).as_object();
    EXPECT_EQ(d.at("record").at("id").to_number<int64_t>() % 10, 0);
    EXPECT_EQ(d.at("record_id").to_number<int64_t>(), d.at("record").at("id").to_number<int64_t>());
    EXPECT_EQ(d.at("stage").as_string(), "faulty");
    EXPECT_EQ(d.at("plugin").as_string(), "fault");
    EXPECT_EQ(d.at("kind").as_string(), "failed");
    EXPECT_EQ(d.at("error").as_string(), "injected failure");
    EXPECT_EQ(d.at("attempts").to_number<int64_t>(), 1);
    EXPECT_EQ(d.at("time").as_string().size(), 20u);
    bj::object rep = report_of(dir / "r.json");
    EXPECT_EQ(num(stage_of(rep, "faulty"), "dead_lettered"), 100);
    EXPECT_EQ(num(rep.at("records").as_object(), "dead_lettered"), 100);
    // Nothing lost: every extracted record was loaded or dead-lettered.
    EXPECT_EQ(num(stage_of(rep, "out"), "in") + num(stage_of(rep, "dlq"), "in"), 1000);
}

TEST(Cli, RetriesRecoverTransientFailuresThenDeadLetterTheRest) {
    TempDir dir;
    std::string ok = dir.write("ok.json", fault_pipeline(R"({"fail_every":10,"fail_times":2})",
                                                         R"({"retry":{"max_attempts":3,"backoff_ms":1},"dead_letter":"dlq"})"));
    ProcessResult r = run_sluice({"run", ok, "--report", dir / "r.json"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(read_lines(dir / "o.ndjson").size(), 1000u) << "the third try succeeds";
    EXPECT_TRUE(read_lines(dir / "dead.ndjson").empty());
    EXPECT_EQ(num(stage_of(report_of(dir / "r.json"), "faulty"), "retries"), 200) << "100 records, 2 retries each";

    std::string bad = dir.write("bad.json", fault_pipeline(R"({"fail_every":10,"fail_times":5})",
                                                           R"({"retry":{"max_attempts":3,"backoff_ms":1},"dead_letter":"dlq"})"));
    r = run_sluice({"run", bad});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(read_lines(dir / "o.ndjson").size(), 900u);
    auto dead = read_lines(dir / "dead.ndjson");
    ASSERT_EQ(dead.size(), 100u);
    EXPECT_EQ(bj::parse(dead[0]).at("attempts").to_number<int64_t>(), 3);
    EXPECT_NE(r.err.find("after 3 attempts: injected failure"), std::string::npos) << r.err;
}

TEST(Cli, AFailedBatchIsRetriedRecordByRecord) {
    TempDir dir;
    std::string m = dir.write("m.json", fault_pipeline(R"({"throw_at":250})", R"({"retry":{"max_attempts":2,"backoff_ms":1},"dead_letter":"dlq"})"));
    ProcessResult r = run_sluice({"run", m, "--report", dir / "r.json"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(read_lines(dir / "o.ndjson").size(), 1000u) << "the throw happens once; the retry passes";
    EXPECT_EQ(num(stage_of(report_of(dir / "r.json"), "faulty"), "retries"), 100);
}

TEST(Cli, SkipCountsAndLogsAndFailStopsTheRunButFlushes) {
    TempDir dir;
    std::string skip = dir.write("s.json", fault_pipeline(R"({"fail_every":10})", R"("skip")"));
    ProcessResult r = run_sluice({"run", skip, "--report", dir / "r.json"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(read_lines(dir / "o.ndjson").size(), 900u);
    EXPECT_EQ(num(stage_of(report_of(dir / "r.json"), "faulty"), "errors"), 100);

    std::string fail = dir.write("f.json", fault_pipeline(R"({"fail_every":500})", R"("fail")", 100000));
    r = run_sluice({"run", fail, "--report", dir / "f.report"});
    EXPECT_EQ(r.exit_code, 1) << r.err;
    bj::object rep = report_of(dir / "f.report");
    EXPECT_EQ(rep.at("status").as_string(), "failed");
    EXPECT_NE(std::string(rep.at("error").as_string()).find("record 500 failed and on_error is fail: injected failure"),
              std::string::npos) << bj::serialize(rep);
    auto loaded = read_lines(dir / "o.ndjson");
    EXPECT_GT(loaded.size(), 0u) << "what was loaded is flushed";
    EXPECT_LT(loaded.size(), 100000u) << "extraction stopped";
    EXPECT_EQ(int64_t(loaded.size()), num(stage_of(rep, "out"), "in"));
}

TEST(Cli, UnreadableInputCanBeDeadLettered) {
    TempDir dir;
    dir.write("in.ndjson", "{\"a\":1}\n{broken\n{\"a\":2}\n");
    std::string m = dir.write("m.json", R"({"stages":[
        {"id":"in","kind":"extractor","plugin":"file","config":{"path":"in.ndjson"},"on_error":{"dead_letter":"dlq"}},
        {"id":"out","kind":"loader","plugin":"file","config":{"path":"o.ndjson"}},
        {"id":"dlq","kind":"loader","plugin":"file","config":{"path":"dead.ndjson"}}]})");
    ProcessResult r = run_sluice({"run", m});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(read_lines(dir / "o.ndjson").size(), 2u);
    auto dead = read_lines(dir / "dead.ndjson");
    ASSERT_EQ(dead.size(), 1u);
    bj::object d = bj::parse(dead[0]).as_object();
    EXPECT_EQ(d.at("record").as_string(), "{broken") << "invalid JSON is kept as a string";
    EXPECT_EQ(d.at("kind").as_string(), "unreadable");
    EXPECT_EQ(d.at("attributes").at("source_line").as_string(), "2");
    EXPECT_NE(std::string(d.at("error").as_string()).find("invalid JSON"), std::string::npos);
}

TEST(Cli, ACallPastTimeoutMsIsAnErrorAndTheInstanceIsReplaced) {
    TempDir dir;
    // The batch holding record 150 hangs for 1.5 s; the limit is 200 ms. Its
    // 100 records are dead-lettered, the other batches pass through a new
    // instance, and the run still finishes.
    std::string m = dir.write("m.json", fault_pipeline(R"({"hang_at":150,"hang_ms":1500})", R"({"dead_letter":"dlq"})", 400,
                                                       R"(,"timeout_ms":200)"));
    auto start = std::chrono::steady_clock::now();
    ProcessResult r = run_sluice({"run", m, "--report", dir / "r.json"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_LT(std::chrono::steady_clock::now() - start, 10s);
    EXPECT_EQ(read_lines(dir / "o.ndjson").size(), 300u);
    auto dead = read_lines(dir / "dead.ndjson");
    ASSERT_EQ(dead.size(), 100u);
    EXPECT_EQ(bj::parse(dead[0]).at("error").as_string(), "timed out after 200 ms");
    EXPECT_NE(r.err.find("[faulty] a call timed out after 200 ms; replacing the instance"), std::string::npos) << r.err;
}

TEST(Cli, SlowCallsWithinTheLimitAreFine) {
    TempDir dir;
    std::string m = dir.write("m.json", fault_pipeline(R"({"slow_ms":20})", R"("fail")", 300, R"(,"timeout_ms":2000)"));
    ProcessResult r = run_sluice({"run", m});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(read_lines(dir / "o.ndjson").size(), 300u);
}
