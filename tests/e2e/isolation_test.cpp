// Untrusted plugins (issue 10): the `faulty` test plugin misbehaves on
// purpose between a generator of 3000 records and a file loader. Isolated
// ("isolation": "process") every fault costs the records that cause it and
// nothing else; in process, what can be handled (accounting, bad statuses,
// time limits) is, and what cannot (a crash, exit()) is reported clearly
// and, with state, recovered from by the next run.
#include "child_process.hpp"
#include "record_accounting.hpp"
#include "temp_dir.hpp"

#include <sluice/dead_letter.hpp>

#include <boost/json.hpp>
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <filesystem>
#include <set>

using namespace sluice::test;
namespace bj = boost::json;

namespace {

const std::string kTestPlugins = SLUICE_TEST_PLUGIN_DIR;
const std::string kBadPlugins = SLUICE_BAD_PLUGIN_DIR;
// Record 1234 of the generator ("id":1234 in its payload) is the poison.
const std::string kPoison = R"(\"id\":1234,)";

struct Outcome {
    ProcessResult process;
    bj::object report; // empty when none was written
    std::vector<std::string> out;
    std::set<uint64_t> dead_ids;
    std::vector<std::string> dead_errors;

    const bj::object &stage(const std::string &id) const { return stage_of(report, id); }
    uint64_t stage_count(const std::string &id, const char *key) const {
        return stage(id).at(key).to_number<uint64_t>();
    }
    uint64_t crashes(const std::string &cause) const {
        const bj::object &c = stage("bad").at("workers").at("crashes").as_object();
        return c.contains(cause) ? c.at(cause).to_number<uint64_t>() : 0;
    }
};

// generate (3000) -> faulty `fault` -> file out.ndjson; failures dead-lettered
// to dead.ndjson. `settings`: more keys of the faulty stage.
std::string manifest(const TempDir &dir, const std::string &fault, const std::string &settings,
                     const std::string &top = "", const std::string &match = kPoison) {
    return dir.write("m.json", R"({"name":"faults","plugin_dirs":[")" + kTestPlugins + R"("],)" + top + R"(
  "stages":[
    {"id":"gen","kind":"extractor","plugin":"generate","batch_size":500,"config":{"count":3000}},
    {"id":"bad","kind":"transformer","plugin":"faulty",)" + settings +
                                      R"("on_error":{"then":"dead_letter","dead_letter":"dlq"},
     "config":{"fault":")" + fault + R"(","match":")" + match + R"("}},
    {"id":"out","kind":"loader","plugin":"file","inputs":["bad"],"config":{"path":"out.ndjson","append":true}},
    {"id":"dlq","kind":"loader","plugin":"file","config":{"path":"dead.ndjson","append":true}}]})");
}

Outcome run(const TempDir &dir, const std::string &manifest_path, const std::string &log_level = "warn") {
    Outcome o;
    std::filesystem::remove(dir / "report.json");
    o.process = run_sluice({"run", manifest_path, "--report", dir / "report.json", "--log-level", log_level});
    if (std::filesystem::exists(dir / "report.json")) o.report = bj::parse(read_file(dir / "report.json")).as_object();
    if (std::filesystem::exists(dir / "out.ndjson")) o.out = read_lines(dir / "out.ndjson");
    if (std::filesystem::exists(dir / "dead.ndjson")) {
        for (const std::string &l : read_lines(dir / "dead.ndjson")) {
            std::string problem;
            auto letter = sluice::dead_letter::read(l, problem);
            EXPECT_TRUE(letter) << problem;
            if (!letter) continue;
            // The record's own id (the generator's "id" is the host's id).
            o.dead_ids.insert(bj::parse(letter->payload).at("id").to_number<uint64_t>());
            o.dead_errors.push_back(letter->error);
        }
    }
    return o;
}

bool has_temp_files(const TempDir &dir) {
    for (const auto &e : std::filesystem::directory_iterator(dir.path()))
        if (e.path().filename().string().find(".tmp-") != std::string::npos) return true;
    return false;
}

// The isolated run of a fault that kills the worker on record 1234: the run
// completes, exactly that record is dead-lettered with `reason`, every
// other record is loaded once, and the report counts the crash.
void expect_only_the_poison_is_lost(const std::string &fault, const std::string &settings, const std::string &reason,
                                    const std::string &cause) {
    TempDir dir;
    Outcome o = run(dir, manifest(dir, fault, R"("isolation":"process",)" + settings));
    ASSERT_EQ(o.process.exit_code, 0) << o.process.err;
    EXPECT_EQ(o.dead_ids, std::set<uint64_t>{1234});
    ASSERT_EQ(o.dead_errors.size(), 1u);
    EXPECT_EQ(o.dead_errors[0], "worker crashed: " + reason);
    EXPECT_EQ(o.out.size(), 2999u);
    std::set<std::string> unique(o.out.begin(), o.out.end());
    EXPECT_EQ(unique.size(), 2999u) << "no record twice";
    for (const std::string &l : o.out) EXPECT_EQ(l.find("\"id\":1234,"), std::string::npos);
    EXPECT_TRUE(unaccounted_records(o.report).empty());
    const bj::object &workers = o.stage("bad").at("workers").as_object();
    EXPECT_EQ(workers.at("poison_records").to_number<uint64_t>(), 1u);
    EXPECT_EQ(workers.at("poison_record_ids").as_array(), bj::array{1234});
    EXPECT_GE(o.crashes(cause), 3u) << "twice on the batch, then on the halves";
    // About 2*log2(500) calls to find it, half of which crash.
    EXPECT_LE(o.crashes(cause), 2u + 10u);
    EXPECT_GE(workers.at("restarts").to_number<uint64_t>(), o.crashes(cause) - 1);
    EXPECT_NE(o.process.err.find("[bad] the worker of plugin 'faulty' died (" + reason + ")"), std::string::npos)
        << o.process.err;
    EXPECT_NE(o.process.err.find("record 1234 kills the worker"), std::string::npos) << o.process.err;
}

} // namespace

TEST(Isolation, ASegfaultCostsOnlyThePoisonRecord) {
    expect_only_the_poison_is_lost("crash", "", "SIGSEGV", "SIGSEGV");
}

TEST(Isolation, AnAbortCostsOnlyThePoisonRecord) { expect_only_the_poison_is_lost("abort", "", "SIGABRT", "SIGABRT"); }

TEST(Isolation, ExitInProcessCostsOnlyThePoisonRecord) {
    expect_only_the_poison_is_lost("exit", "", "exit code 4", "exit");
}

TEST(Isolation, AnEndlessLoopIsKilledAtTheTimeLimit) {
    expect_only_the_poison_is_lost("loop", R"("timeout_ms":300,)", "timed out after 300 ms", "timeout");
}

TEST(Isolation, AnAllocationPastTheMemoryLimitKillsOnlyThatWorker) {
    expect_only_the_poison_is_lost("allocate", R"("memory_limit_mb":300,)", "memory limit (300 MB)", "memory_limit");
}

TEST(Isolation, ATransientCrashIsRetriedWithNothingLost) {
    // The first worker dies on the 700th record it sees; the new one, sent
    // the same batch, counts afresh and gets through the 500 left.
    TempDir dir;
    std::string m = dir.write("m.json", R"({"name":"transient","plugin_dirs":[")" + kTestPlugins + R"("],
  "stages":[
    {"id":"gen","kind":"extractor","plugin":"generate","batch_size":500,"config":{"count":1000}},
    {"id":"bad","kind":"transformer","plugin":"faulty","isolation":"process","config":{"fault":"crash","nth":700}},
    {"id":"out","kind":"loader","plugin":"file","config":{"path":"out.ndjson"}}]})");
    Outcome o = run(dir, m);
    ASSERT_EQ(o.process.exit_code, 0) << o.process.err;
    EXPECT_EQ(o.out.size(), 1000u);
    EXPECT_EQ(o.crashes("SIGSEGV"), 1u);
    EXPECT_EQ(o.stage("bad").at("workers").at("restarts").to_number<uint64_t>(), 1u);
    EXPECT_EQ(o.stage("bad").at("workers").at("poison_records").to_number<uint64_t>(), 0u);
}

TEST(Isolation, ALeakingPluginIsRestartedAtItsMemoryLimit) {
    TempDir dir;
    std::string m = dir.write("m.json", R"({"name":"leak","plugin_dirs":[")" + kTestPlugins + R"("],
  "stages":[
    {"id":"gen","kind":"extractor","plugin":"generate","batch_size":20,"config":{"count":3000}},
    {"id":"bad","kind":"transformer","plugin":"faulty","isolation":"process","memory_limit_mb":150,
     "max_restarts":100,"config":{"fault":"leak"}},
    {"id":"out","kind":"loader","plugin":"file","config":{"path":"out.ndjson"}}]})");
    Outcome o = run(dir, m);
    ASSERT_EQ(o.process.exit_code, 0) << o.process.err;
    EXPECT_EQ(o.out.size(), 3000u) << "150 calls leak 600 MB in all; nothing is lost to the restarts";
    EXPECT_GE(o.crashes("memory_limit"), 2u);
    EXPECT_EQ(o.stage("bad").at("workers").at("poison_records").to_number<uint64_t>(), 0u);
    EXPECT_LE(o.stage("bad").at("workers").at("peak_rss_mb").to_number<uint64_t>(), 150u + 60u);
}

TEST(Isolation, AnExtractorWhoseWorkerDiesGoesOnFromItsLastPosition) {
    TempDir dir;
    std::string m = dir.write("m.json", R"({"name":"source","plugin_dirs":[")" + kTestPlugins + R"("],
  "stages":[
    {"id":"src","kind":"extractor","plugin":"faulty_source","isolation":"process","batch_size":500,
     "config":{"count":3000,"crash_at":1700}},
    {"id":"out","kind":"loader","plugin":"file","config":{"path":"out.ndjson"}}]})");
    Outcome o = run(dir, m);
    ASSERT_EQ(o.process.exit_code, 0) << o.process.err;
    std::set<std::string> unique(o.out.begin(), o.out.end());
    EXPECT_EQ(o.out.size(), 3000u);
    EXPECT_EQ(unique.size(), 3000u) << "nothing read twice, nothing skipped";
    const bj::object &workers = o.stage("src").at("workers").as_object();
    EXPECT_EQ(workers.at("restarts").to_number<uint64_t>(), 1u);
    EXPECT_EQ(workers.at("crashes").at("SIGSEGV").to_number<uint64_t>(), 1u);
    EXPECT_NE(o.process.err.find("[src] the worker of plugin 'faulty_source' died (SIGSEGV) during a pull"),
              std::string::npos)
        << o.process.err;
}

TEST(Isolation, PastMaxRestartsThePoisonRecordsTakeTheErrorPath) {
    // Every record kills the worker: after max_restarts (3) deaths charged
    // within a minute the stage stops restarting and follows on_error.
    TempDir dir;
    Outcome o = run(dir, manifest(dir, "crash", R"("isolation":"process","max_restarts":3,)", "", R"(\"id\":)"));
    ASSERT_EQ(o.process.exit_code, 3) << "every record failed: the run says so" << o.process.err;
    EXPECT_EQ(o.out.size(), 0u);
    EXPECT_EQ(o.dead_ids.size(), 3000u) << "every record dead-lettered, none lost";
    EXPECT_EQ(o.stage("bad").at("workers").at("poison_records").to_number<uint64_t>(), 4u)
        << "one free, then three charged";
    EXPECT_NE(o.process.err.find("max_restarts 3"), std::string::npos) << o.process.err;
    EXPECT_TRUE(unaccounted_records(o.report).empty());
}

TEST(Isolation, PastMaxRestartsWithOnErrorFailTheRunFailsCleanly) {
    TempDir dir;
    std::string m = dir.write("m.json", R"({"name":"fails","plugin_dirs":[")" + kTestPlugins + R"("],
  "stages":[
    {"id":"gen","kind":"extractor","plugin":"generate","batch_size":500,"config":{"count":3000}},
    {"id":"bad","kind":"transformer","plugin":"faulty","isolation":"process","max_restarts":2,"on_error":"fail",
     "config":{"fault":"crash","match":"\"id\":"}},
    {"id":"out","kind":"loader","plugin":"file","config":{"path":"out.ndjson"}}]})");
    Outcome o = run(dir, m);
    EXPECT_EQ(o.process.exit_code, 1) << o.process.err;
    ASSERT_FALSE(o.report.empty()) << "the report is written";
    EXPECT_EQ(o.report.at("status").as_string(), "failed");
    const std::string error(o.report.at("error").as_string());
    EXPECT_NE(error.find("stage 'bad'"), std::string::npos) << error;
    EXPECT_NE(error.find("worker crashed: SIGSEGV"), std::string::npos) << error;
    EXPECT_TRUE(o.out.empty()) << "every record kills the worker";
    EXPECT_FALSE(has_temp_files(dir));
}

TEST(Isolation, ExitInStartFailsTheRunWithTheReason) {
    for (const bool isolated : {true, false}) {
        TempDir dir;
        Outcome o = run(dir, manifest(dir, "exit_in_start", isolated ? R"("isolation":"process",)" : ""));
        if (isolated) {
            EXPECT_EQ(o.process.exit_code, 1) << o.process.err;
            ASSERT_FALSE(o.report.empty());
            EXPECT_EQ(o.report.at("status").as_string(), "failed");
            EXPECT_NE(std::string(o.report.at("error").as_string())
                          .find("stage 'bad' (transformer faulty) failed to start: the worker died during start (exit "
                                "code 3)"),
                      std::string::npos)
                << o.report.at("error");
        } else {
            // The plugin ends the host's process: Sluice can only say who did.
            EXPECT_EQ(o.process.exit_code, 3);
            EXPECT_NE(o.process.err.find("stage 'bad' (transformer faulty) ended the process (exit) during start"),
                      std::string::npos)
                << o.process.err;
        }
        if (isolated) {
            EXPECT_FALSE(has_temp_files(dir));
        }
    }
}

// Accounting works the same in both modes: the records a plugin loses are
// failed (and dead-lettered) with a reason, counted, and the quality score
// says so.
TEST(Isolation, RecordsAPluginLosesAreAccountedForInBothModes) {
    struct Case {
        const char *fault;
        std::set<uint64_t> lost;
        const char *refusal; // "" when the plugin's calls are all accepted
    };
    const std::set<uint64_t> lasts{500, 1000, 1500, 2000, 2500, 3000};
    for (const Case &c : {Case{"bad_output", {1234}, "emit to output 7 (the stage has 1)"},
                          Case{"forward_out_of_range", lasts, "forward of input 500 (the call has 500 records)"},
                          Case{"never_forward_last", lasts, ""}}) {
        for (const bool isolated : {false, true}) {
            SCOPED_TRACE(std::string(c.fault) + (isolated ? " isolated" : " in process"));
            TempDir dir;
            Outcome o = run(dir, manifest(dir, c.fault, isolated ? R"("isolation":"process",)" : ""));
            ASSERT_EQ(o.process.exit_code, 0) << o.process.err;
            EXPECT_EQ(o.dead_ids, c.lost);
            for (const std::string &e : o.dead_errors) EXPECT_EQ(e, "the plugin did not account for this record");
            EXPECT_EQ(o.out.size(), 3000u - c.lost.size());
            EXPECT_EQ(o.stage_count("bad", "unaccounted"), c.lost.size());
            EXPECT_EQ(o.report.at("records").at("unaccounted").to_number<uint64_t>(), c.lost.size());
            EXPECT_LT(o.report.at("quality").at("quality_score").to_number<double>(), 1.0);
            EXPECT_EQ(o.process.out.find("quality score 1.000"), std::string::npos) << o.process.out;
            if (*c.refusal) {
                const std::string line = "the host refused a call of plugin 'faulty': " + std::string(c.refusal);
                EXPECT_NE(o.process.err.find(line), std::string::npos) << o.process.err;
                EXPECT_EQ(o.process.err.find(line), o.process.err.rfind(line)) << "logged once per stage";
            }
            EXPECT_TRUE(unaccounted_records(o.report).empty());
        }
    }
}

TEST(Isolation, AFilterThatDropsOnPurposeIsNotAnError) {
    for (const bool isolated : {false, true}) {
        TempDir dir;
        Outcome o = run(dir, manifest(dir, "drop", isolated ? R"("isolation":"process",)" : ""));
        ASSERT_EQ(o.process.exit_code, 0) << o.process.err;
        EXPECT_EQ(o.out.size(), 2999u);
        EXPECT_TRUE(o.dead_ids.empty());
        EXPECT_EQ(o.stage_count("bad", "filtered"), 1u);
        EXPECT_EQ(o.stage_count("bad", "errors"), 0u);
        EXPECT_EQ(o.stage_count("bad", "unaccounted"), 0u);
        EXPECT_TRUE(unaccounted_records(o.report).empty());
    }
}

TEST(Isolation, AStatusTheAbiDoesNotKnowFailsTheBatchInBothModes) {
    for (const bool isolated : {false, true}) {
        TempDir dir;
        Outcome o = run(dir, manifest(dir, "garbage_status", isolated ? R"("isolation":"process",)" : ""));
        ASSERT_EQ(o.process.exit_code, 0) << o.process.err;
        EXPECT_EQ(o.dead_ids.size(), 500u) << "the batch holding record 1234";
        EXPECT_TRUE(o.dead_ids.count(1234));
        ASSERT_FALSE(o.dead_errors.empty());
        EXPECT_EQ(o.dead_errors[0], "the plugin returned status 12345, which the ABI does not know");
        EXPECT_EQ(o.out.size(), 2500u);
    }
}

TEST(Isolation, InProcessATimedOutCallIsAbandonedAndReported) {
    TempDir dir;
    Outcome o = run(dir, manifest(dir, "loop", R"("timeout_ms":300,)"));
    ASSERT_EQ(o.process.exit_code, 0) << o.process.err;
    EXPECT_EQ(o.dead_ids.size(), 500u) << "the whole call timed out";
    EXPECT_EQ(o.out.size(), 2500u);
    EXPECT_EQ(o.stage_count("bad", "calls_running_at_exit"), 1u) << "a thread cannot be killed";
    EXPECT_NE(o.process.err.find("a call timed out after 300 ms"), std::string::npos) << o.process.err;
}

TEST(Isolation, LyingAboutStructSizesIsRefusedInBothModes) {
    for (const bool isolated : {false, true}) {
        TempDir dir;
        std::string m = dir.write("m.json", R"({"name":"liar","stages":[
    {"id":"gen","kind":"extractor","plugin":"generate","config":{"count":10}},
    {"id":"bad","kind":"transformer","plugin":"liar","library":")" + kBadPlugins + R"(/liar.so",)" +
                                                (isolated ? R"("isolation":"process",)" : "") + R"("config":{}},
    {"id":"out","kind":"loader","plugin":"null"}]})");
        ProcessResult r = run_sluice({"run", m});
        EXPECT_EQ(r.exit_code, 2) << r.err;
        EXPECT_NE(r.err.find("liar.so: stage descriptor 0 has struct_size 16, expected at least 136"), std::string::npos) << r.err;
    }
}

// In process a segfault kills the host: it says which stage, leaves a
// marker in the state, and the next run isolates that stage until it is
// past the batch that crashed (setting the poison record aside), then goes
// on in process; the run after is in process from the start.
TEST(Isolation, AnInProcessCrashIsReportedAndTheNextRunRecovers) {
    TempDir dir;
    std::string m = manifest(dir, "crash", "", R"("state_dir":"state",)");
    Outcome first = run(dir, m);
    EXPECT_EQ(first.process.exit_code, 128 + 11) << first.process.err;
    EXPECT_NE(first.process.err.find("sluice: fatal SIGSEGV in stage 'bad' (transformer faulty) during process"),
              std::string::npos)
        << first.process.err;
    ASSERT_TRUE(std::filesystem::exists(dir / "state/crashed-stage.json"));

    Outcome second = run(dir, m, "info");
    ASSERT_EQ(second.process.exit_code, 0) << second.process.err;
    EXPECT_NE(second.process.err.find("the last run crashed in stage 'bad' (plugin faulty, SIGSEGV) on pull 3 of 'gen'"),
              std::string::npos)
        << second.process.err;
    // Pull 3 (records 1001-1500) held the poison; from pull 4 on, in process.
    EXPECT_NE(second.process.err.find("[bad] worker 0 is past the batch that crashed the last run: back in the host's "
                                      "process"),
              std::string::npos)
        << second.process.err;
    EXPECT_EQ(second.crashes("SIGSEGV"), 11u) << "twice on the batch, then 9 halvings of 500 records";
    EXPECT_EQ(second.stage("bad").at("isolation").as_string(), "process");
    EXPECT_EQ(second.dead_ids, std::set<uint64_t>{1234});
    // At least once: every record but the poison is in the output.
    std::set<std::string> ids;
    for (const std::string &l : second.out) ids.insert(std::to_string(bj::parse(l).at("id").to_number<int64_t>()));
    EXPECT_EQ(ids.size(), 2999u);
    EXPECT_FALSE(ids.count("1234"));
    EXPECT_FALSE(std::filesystem::exists(dir / "state/crashed-stage.json"));
    EXPECT_FALSE(has_temp_files(dir)) << "the temp files of the crashed run are gone";

    Outcome third = run(dir, m);
    ASSERT_EQ(third.process.exit_code, 0) << third.process.err;
    EXPECT_EQ(third.stage("bad").at("isolation").as_string(), "none");
    EXPECT_EQ(third.report.at("records").at("extracted").to_number<uint64_t>(), 0u) << "nothing left to read";
}

// Every stage kind runs isolated, with several workers, state and
// acknowledgements, and writes what it writes in process.
TEST(Isolation, EveryStageKindRunsIsolatedWithTheSameResult) {
    TempDir dir;
    std::string rows;
    for (int i = 0; i < 5000; ++i)
        rows += "{\"id\":" + std::to_string(i) + ",\"amount\":\"" + std::to_string(i % 97) + "\",\"email\":\"" +
                (i % 10 ? "a@b.c" : "") + "\"}\n";
    dir.write("in.ndjson", rows);
    auto manifest_for = [&](const std::string &name, const std::string &isolation) {
        return dir.write(name + ".json", R"({"name":")" + name + R"(","state_dir":")" + name + R"(-state",
  "defaults":{"batch_size":300,"threads":2)" + isolation + R"(},
  "stages":[
    {"id":"in","kind":"extractor","plugin":"file","threads":1,"config":{"path":"in.ndjson"}},
    {"id":"map","kind":"transformer","plugin":"map","config":{"cast":{"amount":"int"}}},
    {"id":"gate","kind":"validator","plugin":"rules","config":{"rules":[{"field":"email","required":true,"min_length":1}]}},
    {"id":"out","kind":"loader","plugin":"file","threads":1,"inputs":["gate.pass"],"config":{"path":")" +
                                              name + R"(.ndjson"}},
    {"id":"db","kind":"loader","plugin":"sqlite","threads":1,"inputs":["gate.fail"],
     "config":{"path":")" + name + R"(.db","table":"bad","create_table":true,"columns":["id","amount","email"]}}]})");
    };
    ProcessResult plain = run_sluice({"run", manifest_for("plain", ""), "--report", dir / "plain-report.json"});
    ASSERT_EQ(plain.exit_code, 0) << plain.err;
    const std::string iso_manifest = manifest_for("iso", R"(,"isolation":"process")");
    ProcessResult iso = run_sluice({"run", iso_manifest, "--report", dir / "iso-report.json"});
    ASSERT_EQ(iso.exit_code, 0) << iso.err;
    EXPECT_EQ(read_file(dir / "plain.ndjson"), read_file(dir / "iso.ndjson"));
    EXPECT_EQ(read_lines(dir / "iso.ndjson").size(), 4500u);
    bj::object report = bj::parse(read_file(dir / "iso-report.json")).as_object();
    EXPECT_TRUE(unaccounted_records(report).empty());
    for (const auto &s : report.at("stages").as_array()) {
        EXPECT_EQ(s.at("isolation").as_string(), "process");
        EXPECT_EQ(s.at("workers").at("restarts").to_number<uint64_t>(), 0u);
        EXPECT_GT(s.at("workers").at("peak_rss_mb").to_number<uint64_t>(), 0u);
    }
    sqlite3 *db = nullptr;
    ASSERT_EQ(sqlite3_open((dir / "iso.db").c_str(), &db), SQLITE_OK);
    sqlite3_stmt *st = nullptr;
    ASSERT_EQ(sqlite3_prepare_v2(db, "SELECT count(*) FROM bad", -1, &st, nullptr), SQLITE_OK);
    ASSERT_EQ(sqlite3_step(st), SQLITE_ROW);
    EXPECT_EQ(sqlite3_column_int64(st, 0), 500);
    sqlite3_finalize(st);
    sqlite3_close(db);
    // The isolated extractor saved its position through its worker: the
    // second run reads nothing.
    ProcessResult again = run_sluice({"run", iso_manifest, "--report", dir / "iso2-report.json"});
    ASSERT_EQ(again.exit_code, 0) << again.err;
    EXPECT_EQ(bj::parse(read_file(dir / "iso2-report.json")).at("records").at("extracted").to_number<uint64_t>(), 0u);
    // Counters a plugin keeps reach the report from its worker.
    bool counted = false;
    for (const auto &s : report.at("stages").as_array())
        if (s.at("id").as_string() == "in") counted = !s.at("counters").as_object().empty();
    EXPECT_TRUE(counted) << "the file extractor's counters crossed the boundary";
}

TEST(Isolation, ValidateShowsIsolatedStagesAndStartsTheirWorkers) {
    TempDir dir;
    ProcessResult r = run_sluice({"validate", manifest(dir, "crash", R"("isolation":"process","memory_limit_mb":200,)")});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.out.find("isolated max_restarts=5 memory_limit=200MB"), std::string::npos) << r.out;
    // A config the plugin refuses is refused from inside its worker too.
    std::string m = dir.write("bad.json", R"({"stages":[
    {"id":"gen","kind":"extractor","plugin":"generate","config":{"count":1}},
    {"id":"gate","kind":"validator","plugin":"rules","isolation":"process","config":{"rules":[{"field":"a","regex":"("}]}},
    {"id":"out","kind":"loader","plugin":"null","inputs":["gate.pass"]}]})");
    ProcessResult bad = run_sluice({"validate", m});
    EXPECT_EQ(bad.exit_code, 2) << bad.out;
    EXPECT_NE(bad.err.find("/stages/1/config: "), std::string::npos) << bad.err;
    EXPECT_NE(bad.err.find("invalid pattern"), std::string::npos) << bad.err;
}

TEST(Isolation, AMemoryLimitNeedsIsolation) {
    TempDir dir;
    std::string m = dir.write("m.json", R"({"stages":[
    {"id":"gen","kind":"extractor","plugin":"generate","config":{"count":1}},
    {"id":"out","kind":"loader","plugin":"null","memory_limit_mb":100}]})");
    ProcessResult r = run_sluice({"validate", m});
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_NE(r.err.find("/stages/1/memory_limit_mb: a memory limit needs \"isolation\": \"process\""),
              std::string::npos)
        << r.err;
}

TEST(Isolation, APluginsLogLinesCarryItsStageFromTheWorker) {
    TempDir dir;
    Outcome o = run(dir, manifest(dir, "log", R"("isolation":"process",)"));
    ASSERT_EQ(o.process.exit_code, 0) << o.process.err;
    EXPECT_NE(o.process.err.find("[bad] faulty: saw record 1234"), std::string::npos) << o.process.err;
    EXPECT_EQ(o.stage("bad").at("counters").at("faulty_hits").to_number<int64_t>(), 1);
}
