// End-to-end: Sluice as ops teams run it under a scheduler or as a service:
// runs that fail when they should, checks before running, what the report
// and the help say.
#include "child_process.hpp"
#include "record_accounting.hpp"
#include "temp_dir.hpp"

#include <boost/json.hpp>
#include <gtest/gtest.h>

#include <filesystem>
#include <sys/stat.h>

using namespace sluice::test;
namespace bj = boost::json;

namespace {

const std::string kSource = SLUICE_SOURCE_DIR;

struct Finished {
    ProcessResult process;
    bj::object report;
};

Finished run_manifest(const TempDir &dir, const std::string &manifest, std::vector<std::string> extra = {}) {
    std::string m = dir.write("m.json", manifest);
    std::vector<std::string> args{"run", m, "--report", dir / "report.json"};
    args.insert(args.end(), extra.begin(), extra.end());
    Finished r;
    r.process = run_sluice(args);
    if (std::filesystem::exists(dir / "report.json")) r.report = read_checked_report(dir / "report.json");
    return r;
}

// 100 records through `middle` into a file; `top` adds manifest keys.
std::string pipeline(const std::string &middle, const std::string &top = "") {
    return R"({"name":"ops",)" + top + R"("stages":[
      {"id":"in","kind":"extractor","plugin":"generate","config":{"count":100,"invalid_every":10}},)" +
           middle + R"(
      {"id":"out","kind":"loader","plugin":"file","config":{"path":"out.ndjson"}}]})";
}

const char *kEveryRecordFails =
    R"({"id":"cast","kind":"transformer","plugin":"map","config":{"cast":{"email":"int"}}},)";
const char *kRejectsTheInvalid =
    R"({"id":"gate","kind":"validator","plugin":"rules","config":{"rules":[{"field":"amount","min":0}]}},)";

std::vector<std::string> crossed(const bj::object &report) {
    std::vector<std::string> out;
    if (const bj::value *c = report.if_contains("thresholds_crossed"))
        for (const auto &line : c->as_array()) out.emplace_back(line.as_string());
    return out;
}

} // namespace

TEST(Operations, ARunInWhichEveryRecordFailedExits3WithTheReason) {
    TempDir dir;
    Finished r = run_manifest(dir, pipeline(kEveryRecordFails));
    EXPECT_EQ(r.process.exit_code, 3) << r.process.err;
    ASSERT_FALSE(r.report.empty());
    EXPECT_EQ(r.report.at("status").as_string(), "completed") << "the run got to its end";
    EXPECT_EQ(r.report.at("exit_code").as_int64(), 3);
    EXPECT_EQ(crossed(r.report), std::vector<std::string>{
                                     "every record failed (100 of 100); set fail_if_nothing_loaded to false to "
                                     "accept such a run"});
    EXPECT_NE(r.process.err.find("the run crossed a threshold: every record failed"), std::string::npos)
        << r.process.err;

    // The manifest can accept such a run.
    TempDir dir2;
    Finished accepted = run_manifest(dir2, pipeline(kEveryRecordFails, R"("fail_if_nothing_loaded":false,)"));
    EXPECT_EQ(accepted.process.exit_code, 0) << accepted.process.err;
    EXPECT_TRUE(crossed(accepted.report).empty());
}

TEST(Operations, NothingReachingADestinationExits3EvenWithDeadLettersWritten) {
    TempDir dir;
    // Every record fails and is dead-lettered: the dead-letter file is
    // written, but no record was delivered.
    Finished r = run_manifest(dir, R"({"name":"ops","stages":[
      {"id":"in","kind":"extractor","plugin":"generate","config":{"count":50}},
      {"id":"gate","kind":"validator","plugin":"rules","config":{"rules":[{"field":"no_such_field","required":true}]}},
      {"id":"out","kind":"loader","plugin":"file","inputs":["gate.pass"],"config":{"path":"out.ndjson"}}]})");
    EXPECT_EQ(r.process.exit_code, 3) << r.process.err;
    EXPECT_EQ(crossed(r.report),
              std::vector<std::string>{"no record of the 50 extracted reached a destination (dead letters aside); "
                                       "set fail_if_nothing_loaded to false to accept such a run"});

    TempDir dir2;
    Finished dlq = run_manifest(dir2, R"({"name":"ops","stages":[
      {"id":"in","kind":"extractor","plugin":"generate","config":{"count":100}},
      {"id":"cast","kind":"transformer","plugin":"map","on_error":{"dead_letter":"dead"},
       "config":{"cast":{"email":"int"}}},
      {"id":"out","kind":"loader","plugin":"file","config":{"path":"out.ndjson"}},
      {"id":"dead","kind":"loader","plugin":"file","config":{"path":"dead.ndjson"}}]})");
    EXPECT_EQ(dlq.process.exit_code, 3) << dlq.process.err;
    ASSERT_FALSE(dlq.report.empty());
    const bj::object &records = dlq.report.at("records").as_object();
    EXPECT_EQ(records.at("loaded").as_int64(), 100) << "the dead letters";
    EXPECT_EQ(records.at("delivered").as_int64(), 0);
    EXPECT_EQ(records.at("destinations").at("dead").at("dead_letters"), true);
}

TEST(Operations, ErrorRateAndQualityThresholdsFromTheManifestAndTheCommandLine) {
    // 10 of 100 records break the gate: quality 0.9, no record errors.
    {
        TempDir dir;
        Finished r = run_manifest(dir, pipeline(kRejectsTheInvalid, R"("min_quality":0.95,)"));
        EXPECT_EQ(r.process.exit_code, 3) << r.process.err;
        EXPECT_EQ(crossed(r.report), std::vector<std::string>{"quality score 0.900 is below min_quality 0.95"});
    }
    {
        TempDir dir;
        Finished r = run_manifest(dir, pipeline(kRejectsTheInvalid, R"("min_quality":0.9,"max_error_rate":0,)"));
        EXPECT_EQ(r.process.exit_code, 0) << r.process.err << "at the threshold is not past it";
    }
    {
        TempDir dir;
        Finished r = run_manifest(dir, pipeline(kRejectsTheInvalid), {"--fail-on", "rejects"});
        EXPECT_EQ(r.process.exit_code, 3) << r.process.err;
        EXPECT_EQ(crossed(r.report), std::vector<std::string>{"10 records were rejected (--fail-on rejects)"});
    }
    // Record errors: 3 bad lines of 10.
    TempDir dir;
    std::string lines;
    for (int i = 0; i < 10; ++i) lines += (i % 4 == 1 ? std::string("not json\n") : R"({"i":)" + std::to_string(i) + "}\n");
    dir.write("in.ndjson", lines);
    const std::string m = R"({"name":"ops","stages":[
      {"id":"in","kind":"extractor","plugin":"file","config":{"path":"in.ndjson"}},
      {"id":"out","kind":"loader","plugin":"file","config":{"path":"out.ndjson"}}]})";
    Finished plain = run_manifest(dir, m);
    EXPECT_EQ(plain.process.exit_code, 0) << plain.process.err;
    Finished rate = run_manifest(dir, m, {"--fail-on", "error_rate>0.25"});
    EXPECT_EQ(rate.process.exit_code, 3) << rate.process.err;
    EXPECT_EQ(crossed(rate.report),
              std::vector<std::string>{"error rate 0.300 (3 of 10 records) is above max_error_rate 0.25"});
    Finished any = run_manifest(dir, m, {"--fail-on", "errors", "--fail-on", "quality<0.5"});
    EXPECT_EQ(any.process.exit_code, 3) << any.process.err;
    EXPECT_EQ(crossed(any.report).size(), 1u) << "quality is 1.0 of what was read; only the errors count";

    for (const char *bad : {"error_rate>2", "quality", "speed<3"}) {
        ProcessResult u = run_sluice({"run", dir / "m.json", "--fail-on", bad});
        EXPECT_EQ(u.exit_code, 2) << bad;
        EXPECT_NE(u.err.find("--fail-on"), std::string::npos) << u.err;
    }
    ProcessResult v = run_sluice({"validate", dir.write("bad.json", R"({"max_error_rate":1.5,"stages":[
      {"id":"in","kind":"extractor","plugin":"generate","config":{"count":1}},
      {"id":"out","kind":"loader","plugin":"null"}]})")});
    EXPECT_EQ(v.exit_code, 2);
    EXPECT_NE(v.err.find("bad.json: /max_error_rate: expected a number from 0 to 1"), std::string::npos) << v.err;
}

TEST(Operations, AReportPathThatCannotBeWrittenFailsBeforeAnythingIsRead) {
    TempDir dir;
    std::string m = dir.write("m.json", pipeline(""));
    ProcessResult r = run_sluice({"run", m, "--report", dir / "no/such/dir/report.json"});
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_NE(r.err.find("--report " + (dir / "no/such/dir/report.json") + ": cannot write there"), std::string::npos)
        << r.err;
    EXPECT_FALSE(std::filesystem::exists(dir / "out.ndjson")) << "nothing ran";
}

TEST(Operations, TheReportSaysWhatEachDestinationLoaded) {
    TempDir dir;
    Finished r = run_manifest(dir, R"({"name":"fan","stages":[
      {"id":"in","kind":"extractor","plugin":"generate","config":{"count":40}},
      {"id":"a","kind":"loader","plugin":"file","inputs":["in"],"config":{"path":"a.ndjson"}},
      {"id":"b","kind":"loader","plugin":"null","inputs":["in"]}]})");
    ASSERT_EQ(r.process.exit_code, 0) << r.process.err;
    const bj::object &records = r.report.at("records").as_object();
    EXPECT_EQ(records.at("extracted").as_int64(), 40);
    EXPECT_EQ(records.at("loaded").as_int64(), 80) << "summed over destinations";
    EXPECT_EQ(records.at("delivered").as_int64(), 80);
    EXPECT_EQ(records.at("destinations").at("a").at("loaded").as_int64(), 40);
    EXPECT_EQ(records.at("destinations").at("b").at("loaded").as_int64(), 40);
    EXPECT_NE(r.process.err.find("40 extracted, 80 loaded (a 40, b 40), 0 rejected"), std::string::npos)
        << r.process.err;
    // Which run this was: versions, the manifest's text, when.
    EXPECT_EQ(std::string(r.report.at("manifest_hash").as_string()).substr(0, 8), "fnv1a64:");
    EXPECT_EQ(r.report.at("plugin_abi").as_string(), "1.5");
    EXPECT_FALSE(r.report.at("sluice_version").as_string().empty());
    EXPECT_GE(r.report.at("finished_at").as_string(), r.report.at("started_at").as_string());
    EXPECT_TRUE(r.report.at("stages").at(0).as_object().contains("records_per_busy_second"));
}

TEST(Operations, TheReportSaysWhatCpuEachStageCostsPerRecord) {
    // 10 batches of 100: "burn" spins 20 ms of CPU per batch, "nap" sleeps
    // 20 ms per batch (busy, but no CPU). The plugin path is not in the
    // manifest: the test plugins' directory is.
    TempDir dir;
    Finished r = run_manifest(dir, R"({"name":"cpu","plugin_dirs":[")" + std::string(SLUICE_TEST_PLUGIN_DIR) +
                                       R"("],"stages":[
      {"id":"in","kind":"extractor","plugin":"generate","batch_size":100,"config":{"count":1000}},
      {"id":"burn","kind":"transformer","plugin":"fault","batch_size":100,"config":{"spin_ms":20}},
      {"id":"nap","kind":"transformer","plugin":"fault","batch_size":100,"config":{"slow_ms":20}},
      {"id":"out","kind":"loader","plugin":"null"}]})");
    ASSERT_EQ(r.process.exit_code, 0) << r.process.err;
    const bj::object &burn = stage_of(r.report, "burn"), &nap = stage_of(r.report, "nap");
    const double burn_cpu = burn.at("cpu_seconds").to_number<double>();
    EXPECT_GE(burn_cpu, 0.2) << "10 batches of 20 ms of CPU";
    EXPECT_LT(burn_cpu, 0.5);
    EXPECT_NEAR(burn.at("cpu_us_per_record").to_number<double>(), burn_cpu * 1e6 / 1000, 1.0);
    EXPECT_GE(nap.at("busy_seconds").to_number<double>(), 0.2);
    EXPECT_LT(nap.at("cpu_seconds").to_number<double>(), 0.05) << "sleeping is busy, not CPU";
    for (const char *id : {"in", "out"}) {
        EXPECT_GT(stage_of(r.report, id).at("cpu_seconds").to_number<double>(), 0.0) << id;
        EXPECT_LT(stage_of(r.report, id).at("cpu_seconds").to_number<double>(), 0.1) << id;
    }
    EXPECT_NE(r.process.err.find("cpu us/rec"), std::string::npos) << r.process.err;
}

TEST(Operations, FieldsNoStageChangesCrossThePipelineByteForByte) {
    // file -> map (rename, set, drop) -> rules -> route -> file: numbers,
    // escapes and nested blanks that no stage changes come out as written.
    TempDir dir;
    const std::string record =
        R"({"id":7,"amount":362.0,"neg":-0,"tiny":1e-400,"n\u00e9":"caf\u00e9",)"
        R"("nested":{"a": [1.50, 2E+3]},"user":"ada","text":"drop me"})";
    dir.write("in.ndjson", record + "\n");
    Finished r = run_manifest(dir, R"({"name":"fidelity","stages":[
      {"id":"in","kind":"extractor","plugin":"file","config":{"path":"in.ndjson"}},
      {"id":"map","kind":"transformer","plugin":"map","config":{"rename":{"user":"user_id"},"set":{"source":"t"},"drop":["text"]}},
      {"id":"gate","kind":"validator","plugin":"rules","config":{"rules":[{"field":"amount","type":"number","min":0}]}},
      {"id":"split","kind":"transformer","plugin":"route","inputs":["gate.pass"],
       "config":{"routes":[{"output":"big","when":{"field":"amount","gt":100}}]}},
      {"id":"out","kind":"loader","plugin":"file","inputs":["split.big"],"config":{"path":"out.ndjson"}}]})");
    ASSERT_EQ(r.process.exit_code, 0) << r.process.err;
    EXPECT_EQ(read_file(dir / "out.ndjson"),
              R"({"id":7,"amount":362.0,"neg":-0,"tiny":1e-400,"n\u00e9":"caf\u00e9",)"
              R"("nested":{"a": [1.50, 2E+3]},"user_id":"ada","source":"t"})"
              "\n");
}

TEST(Operations, HelpTextsNameWhatExists) {
    ProcessResult h = run_sluice({"help", "help"});
    EXPECT_EQ(h.exit_code, 0) << h.err;
    EXPECT_NE(h.out.find("usage: sluice <command>"), std::string::npos);
    EXPECT_NE(h.out.find("3 the run finished but crossed a threshold"), std::string::npos);
    ProcessResult g = run_sluice({"help", "graph"});
    EXPECT_EQ(g.exit_code, 0);
    size_t at = g.out.find("pipelines/");
    ASSERT_NE(at, std::string::npos);
    std::string named = g.out.substr(at, g.out.find(' ', at) - at);
    EXPECT_TRUE(std::filesystem::exists(kSource + "/" + named)) << named;
    for (const char *cmd : {"tap", "run", "validate"}) {
        ProcessResult t = run_sluice({"help", cmd});
        EXPECT_EQ(t.exit_code, 0) << cmd;
        EXPECT_NE(t.out.find(std::string("usage: sluice ") + cmd), std::string::npos) << t.out;
    }
    // The fake OpenAI server the docs send you to for running the LLM
    // examples offline says how to use it.
    ProcessResult fake = ChildProcess({SLUICE_FAKE_OPENAI, "--help"}).wait();
    EXPECT_EQ(fake.exit_code, 0) << fake.err;
    EXPECT_NE(fake.out.find("usage: fake_openai"), std::string::npos);
    EXPECT_NE(fake.out.find("pipelines/tickets_llm.json"), std::string::npos);
}

// A field a plugin declares secret takes only a ${...} reference, and its
// value is in nothing Sluice writes about the run: logs at every level and
// as JSON, the table, the report, validate and graph output, errors. The
// probe sink says its token at every level on purpose; map quotes a value it
// cannot cast, and the records hold the token too.
TEST(Operations, ASecretIsOnlyAReferenceAndNeverShown) {
    const std::string secret = "S3cr3tT0ken";
    TempDir dir;
    dir.write("tok", secret + "\n");
    dir.write("in.ndjson", "{\"amount\":\"" + secret + "\"}\n{\"amount\":\"" + secret + "\"}\n{\"amount\":\"5\"}\n");
    auto manifest = [&](const std::string &token) {
        return R"({"name":"secrets","plugin_dirs":[")" + std::string(SLUICE_TEST_PLUGIN_DIR) + R"("],"stages":[
          {"id":"in","kind":"extractor","plugin":"file","config":{"path":"in.ndjson"}},
          {"id":"cast","kind":"transformer","plugin":"map","config":{"cast":{"amount":"float"}}},
          {"id":"out","kind":"loader","plugin":"probe_sink","config":{"token":")" + token + R"(","reveal":true}}]})";
    };
    std::string m = dir.write("m.json", manifest("${file:tok}"));
    ProcessResult text = run_sluice({"run", m, "--report", dir / "r.json", "--log-level", "trace"});
    ASSERT_EQ(text.exit_code, 0) << text.err;
    ProcessResult json = run_sluice({"run", m, "--log-format", "json", "--log-level", "debug"});
    ASSERT_EQ(json.exit_code, 0) << json.err;
    ProcessResult validate = run_sluice({"validate", "--check", m});
    ProcessResult graph = run_sluice({"graph", m});
    for (const ProcessResult *r : {&text, &json, &validate, &graph}) {
        EXPECT_EQ((r->out + r->err).find(secret), std::string::npos) << r->out << r->err;
    }
    EXPECT_NE(text.err.find("my token is ***"), std::string::npos) << text.err;
    EXPECT_NE(text.err.find("\"***\" is not a number"), std::string::npos) << "map's message, redacted: " << text.err;
    EXPECT_EQ(read_file(dir / "r.json").find(secret), std::string::npos);
    EXPECT_NE(read_file(dir / "r.json").find("***"), std::string::npos);

    // Written as text in the manifest: refused, without repeating it.
    ProcessResult literal = run_sluice({"validate", dir.write("literal.json", manifest(secret))});
    EXPECT_EQ(literal.exit_code, 2);
    EXPECT_NE(literal.err.find("literal.json: /stages/2/config/token: a secret: write it as ${VARIABLE} or "
                               "${file:PATH}, never as text in the manifest"),
              std::string::npos)
        << literal.err;
    EXPECT_EQ(literal.err.find(secret), std::string::npos);
    ProcessResult mixed = run_sluice({"validate", dir.write("mixed.json", manifest("x${file:tok}"))});
    EXPECT_EQ(mixed.exit_code, 2) << "a reference with text around it is still text";

    // An error from the plugin that quotes it.
    dir.write("failing", "failS3cr3t\n");
    ProcessResult refused = run_sluice({"validate", dir.write("refused.json", manifest("${file:failing}"))});
    EXPECT_EQ(refused.exit_code, 2);
    EXPECT_NE(refused.err.find("token: '***' was refused"), std::string::npos) << refused.err;
    EXPECT_EQ(refused.err.find("failS3cr3t"), std::string::npos);
}
