#include "manifest.hpp"
#include "error_policy.hpp"
#include "resource_conflicts.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

using namespace sluice;

namespace {

const char *kExtractor = R"({"id":"in","kind":"extractor","plugin":"generate","config":{"count":1}})";
const char *kLoader = R"({"id":"out","kind":"loader","plugin":"null"})";

std::string with_stages(const std::string &middle) {
    return std::string(R"({"name":"t","stages":[)") + kExtractor + "," + (middle.empty() ? "" : middle + ",") +
           kLoader + "]}";
}

// The messages parse_manifest gives for `text`, or empty when it parses.
std::vector<std::string> errors_of(const std::string &text) {
    try {
        parse_manifest(text, "m.json");
        return {};
    } catch (const ManifestError &e) {
        return e.messages();
    }
}

std::string first_error(const std::string &text) {
    auto e = errors_of(text);
    return e.empty() ? std::string("(no error)") : e.front();
}

} // namespace

TEST(Manifest, ParsesAMinimalLineWithDefaults) {
    Manifest m = parse_manifest(with_stages(R"({"id":"t1","kind":"transformer","plugin":"map"})"), "dir/m.json");
    EXPECT_EQ(m.name, "t");
    EXPECT_EQ(m.base_dir, "dir");
    ASSERT_EQ(m.stages.size(), 3u);
    EXPECT_EQ(m.stages[1].id, "t1");
    EXPECT_EQ(m.stages[1].kind, SLUICE_KIND_TRANSFORMER);
    EXPECT_EQ(m.stages[1].threads, 1u);
    EXPECT_EQ(m.stages[1].queue_capacity, 8u);
    EXPECT_EQ(m.stages[1].batch_size, 1024u);
    EXPECT_FALSE(m.stages[1].ordered);
    EXPECT_TRUE(m.stages[2].ordered) << "loaders receive batches in extraction order by default";
    EXPECT_EQ(m.stages[0].config.at("count").as_int64(), 1);
    EXPECT_EQ(m.stages[2].json_path, "/stages/2");
}

TEST(Manifest, NameDefaultsToTheFileStemAndDefaultsApply) {
    Manifest m = parse_manifest(std::string(R"({"defaults":{"threads":3,"batch_size":10,"queue_capacity":2},"stages":[)") +
                                    kExtractor + "," + kLoader + "]}",
                                "/x/orders.json");
    EXPECT_EQ(m.name, "orders");
    EXPECT_EQ(m.stages[0].threads, 3u);
    EXPECT_EQ(m.stages[1].batch_size, 10u);
    EXPECT_EQ(m.stages[1].queue_capacity, 2u);
}

TEST(Manifest, PluginDirsAndLibrariesResolveAgainstTheManifestDirectory) {
    Manifest m = parse_manifest(std::string(R"({"plugin_dirs":["p","/abs"],"stages":[)") + kExtractor +
                                    R"(,{"id":"out","kind":"loader","plugin":"x","library":"lib/x.so"}]})",
                                "base/m.json");
    EXPECT_EQ(m.plugin_dirs, (std::vector<std::string>{"base/p", "/abs"}));
    EXPECT_EQ(*m.stages[1].library, "base/lib/x.so");
}

TEST(Manifest, SyntaxErrorsGiveLineAndColumn) {
    EXPECT_EQ(first_error("{\n  \"name\": \"x\",\n  \"stages\": [tru]\n}"),
              "m.json:3:14: JSON syntax error: syntax error");
    EXPECT_NE(first_error("{\"stages\": []} trailing").find("m.json:1:16: JSON syntax error"), std::string::npos);
    EXPECT_NE(first_error("").find("m.json:1:1: JSON syntax error"), std::string::npos);
}

TEST(Manifest, TopLevelShapeErrors) {
    EXPECT_EQ(first_error("[]"), "m.json: /: expected a JSON object");
    EXPECT_EQ(first_error("{}"), "m.json: /stages: required key is missing");
    EXPECT_EQ(first_error(R"({"stages":[]})"), "m.json: /stages: expected a non-empty array of stages");
    EXPECT_EQ(first_error(R"({"stages":{}})"), "m.json: /stages: expected a non-empty array of stages");
    EXPECT_EQ(first_error(R"({"stages":[1]})"), "m.json: /stages/0: expected a stage object");
    EXPECT_EQ(first_error(R"({"plugin_dirs":"x","stages":[1]})"),
              "m.json: /plugin_dirs: expected an array of directory paths");
}

TEST(Manifest, UnknownKeysAreErrors) {
    EXPECT_EQ(first_error(R"({"stage":[]})"),
              "m.json: /stage: unknown key (expected one of: name, description, plugin_dirs, allow_untrusted_plugins, state_dir, checkpoint_interval_ms, memory_limit_mb, max_error_rate, min_quality, fail_if_nothing_loaded, admin, defaults, stages)");
    EXPECT_EQ(first_error(with_stages(R"({"id":"a","kind":"transformer","plugin":"map","thread":2})")),
              "m.json: /stages/1/thread: unknown key (expected one of: id, kind, plugin, library, sha256, config, inputs, "
              "threads, queue_capacity, batch_size, timeout_ms, retry_environment_ms, ordered, on_error, isolation, "
              "commit_records, commit_bytes, commit_interval_ms, "
              "memory_limit_mb, max_restarts)");
    EXPECT_EQ(first_error(R"({"defaults":{"thread":1},"stages":[1]})"),
              "m.json: /defaults/thread: unknown key (expected one of: threads, queue_capacity, batch_size, timeout_ms, "
              "retry_environment_ms, on_error, isolation, memory_limit_mb, max_restarts)");
}

TEST(Manifest, NumbersMustBePositiveIntegersInRange) {
    for (const char *bad : {"0", "-1", "\"2\"", "1.5", "true"}) {
        EXPECT_EQ(first_error(with_stages(std::string(R"({"id":"a","kind":"transformer","plugin":"map","threads":)") +
                                          bad + "}")),
                  "m.json: /stages/1/threads: expected a positive integer")
            << bad;
    }
    EXPECT_EQ(first_error(with_stages(R"({"id":"a","kind":"transformer","plugin":"map","threads":1000})")),
              "m.json: /stages/1/threads: must be at most 256");
    EXPECT_EQ(first_error(with_stages(R"({"id":"a","kind":"transformer","plugin":"map","batch_size":0})")),
              "m.json: /stages/1/batch_size: expected a positive integer");
    EXPECT_EQ(first_error(with_stages(R"({"id":"a","kind":"transformer","plugin":"map","queue_capacity":100000})")),
              "m.json: /stages/1/queue_capacity: must be at most 65536");
}

TEST(Manifest, StageFieldErrors) {
    EXPECT_EQ(first_error(with_stages(R"({"kind":"transformer","plugin":"map"})")),
              "m.json: /stages/1/id: required key is missing");
    EXPECT_EQ(first_error(with_stages(R"({"id":"a b","kind":"transformer","plugin":"map"})")),
              "m.json: /stages/1/id: 'a b' may only contain letters, digits, '_' and '-'");
    EXPECT_EQ(first_error(with_stages(R"({"id":"in","kind":"transformer","plugin":"map"})")),
              "m.json: /stages/1/id: duplicate stage id 'in'");
    EXPECT_EQ(first_error(with_stages(R"({"id":"a","kind":"mangler","plugin":"map"})")),
              "m.json: /stages/1/kind: unknown kind 'mangler' (expected extractor, transformer, enricher, validator "
              "or loader)");
    EXPECT_EQ(first_error(with_stages(R"({"id":"a","kind":"transformer"})")),
              "m.json: /stages/1/plugin: required key is missing");
    EXPECT_EQ(first_error(with_stages(R"({"id":"a","kind":"transformer","plugin":""})")),
              "m.json: /stages/1/plugin: expected a non-empty string");
    EXPECT_EQ(first_error(with_stages(R"({"id":"a","kind":"transformer","plugin":"map","config":[]})")),
              "m.json: /stages/1/config: expected an object");
    EXPECT_EQ(first_error(with_stages(R"({"id":"a","kind":"transformer","plugin":"map","ordered":1})")),
              "m.json: /stages/1/ordered: expected true or false");
}

TEST(Manifest, AListOfStagesChainsInOrder) {
    Manifest m = parse_manifest(with_stages(R"({"id":"t1","kind":"transformer","plugin":"map"})"), "m.json");
    ASSERT_EQ(m.stages[1].inputs.size(), 1u);
    EXPECT_EQ(m.stages[1].inputs[0].stage, "in");
    EXPECT_TRUE(m.stages[1].inputs_implicit);
    EXPECT_EQ(m.stages[2].inputs[0].from, 1u);
    EXPECT_TRUE(m.stages[0].inputs.empty());
}

TEST(Manifest, GraphInputsNameStagesAndOutputs) {
    Manifest m = parse_manifest(R"({"stages":[
        {"id":"a","kind":"extractor","plugin":"file"},
        {"id":"b","kind":"extractor","plugin":"file"},
        {"id":"gate","kind":"validator","plugin":"rules","inputs":["a","b"]},
        {"id":"good","kind":"loader","plugin":"file","inputs":["gate.pass"]},
        {"id":"bad","kind":"loader","plugin":"file","inputs":["gate.fail"]},
        {"id":"copy","kind":"loader","plugin":"null","inputs":["gate.pass"]}]})",
                                "m.json");
    ASSERT_EQ(m.stages[2].inputs.size(), 2u);
    EXPECT_EQ(m.stages[2].inputs[1].from, 1u);
    EXPECT_EQ(m.stages[3].inputs[0].stage, "gate");
    EXPECT_EQ(m.stages[3].inputs[0].output, "pass");
    EXPECT_EQ(m.stages[4].inputs[0].output, "fail");
    EXPECT_FALSE(m.stages[3].ordered) << "fed by two extractors: no common order";
    EXPECT_EQ(m.stages[3].inputs[0].json_path, "/stages/3/inputs/0");
}

TEST(Manifest, GraphMistakes) {
    const std::string a = R"({"id":"a","kind":"extractor","plugin":"file"})";
    auto graph = [&](const std::string &rest) { return R"({"stages":[)" + a + "," + rest + "]}"; };
    EXPECT_EQ(first_error(R"({"stages":[{"id":"t","kind":"transformer","plugin":"map"},)" + std::string(kLoader) + "]}"),
              "m.json: /stages/0: a transformer needs an input: give it \"inputs\" or put it after the stage it reads from");
    EXPECT_EQ(first_error(graph(R"({"id":"b","kind":"extractor","plugin":"file","inputs":["a"]},)" + std::string(kLoader))),
              "m.json: /stages/1/inputs: an extractor has no inputs (it reads its own source)");
    EXPECT_EQ(first_error(graph(R"({"id":"out","kind":"loader","plugin":"null","inputs":["nope"]})")),
              "m.json: /stages/1/inputs/0: unknown stage 'nope'");
    EXPECT_EQ(first_error(graph(R"({"id":"o1","kind":"loader","plugin":"null"},{"id":"o2","kind":"loader","plugin":"null","inputs":["o1"]})")),
              "m.json: /stages/2/inputs/0: 'o1' is a loader; loaders have no output to read");
    EXPECT_EQ(first_error(graph(R"({"id":"o1","kind":"loader","plugin":"null"},{"id":"o2","kind":"loader","plugin":"null"})")),
              "m.json: /stages/2: has no input: the stage before it, 'o1', is a loader (loaders have no output); give it \"inputs\"");
    EXPECT_EQ(first_error(graph(R"({"id":"x","kind":"transformer","plugin":"map","inputs":["a","y"]},
                                   {"id":"y","kind":"transformer","plugin":"map","inputs":["x"]},
                                   {"id":"o","kind":"loader","plugin":"null","inputs":["y"]})")),
              "m.json: /stages/2/inputs/0: cycle: x <- y <- x");
    EXPECT_EQ(first_error(graph(R"({"id":"x","kind":"transformer","plugin":"map","inputs":["x"]},)" + std::string(kLoader))),
              "m.json: /stages/1/inputs/0: cycle: x <- x");
    EXPECT_EQ(first_error(graph(R"({"id":"v","kind":"validator","plugin":"rules"})")),
              "m.json: /stages/1: nothing reads the output of validator 'v' (name it in another stage's \"inputs\", or end the line with a loader)");
    EXPECT_EQ(first_error(R"({"stages":[)" + std::string(kLoader) + "]}"),
              "m.json: /stages/0: a loader needs an input: give it \"inputs\" or put it after the stage it reads from");
    EXPECT_EQ(first_error(R"({"stages":[{"id":"o","kind":"loader","plugin":"null","inputs":["o"]}]})"),
              "m.json: /stages/0/inputs/0: 'o' is a loader; loaders have no output to read");
    EXPECT_EQ(first_error(graph(R"({"id":"b","kind":"extractor","plugin":"file"},
                                   {"id":"o","kind":"loader","plugin":"null","inputs":["a","b"],"ordered":true})")),
              "m.json: /stages/2/ordered: records reach it from several extractors (a, b), which have no common order");
    EXPECT_EQ(first_error(graph(R"({"id":"o","kind":"loader","plugin":"null","inputs":[]})")),
              "m.json: /stages/1/inputs: expected a non-empty array of \"stage\" or \"stage.output\"");
}

TEST(Manifest, ErrorPolicies) {
    Manifest m = parse_manifest(R"({"defaults":{"on_error":"fail"},"stages":[
        {"id":"a","kind":"extractor","plugin":"file","on_error":{"dead_letter":"dlq"}},
        {"id":"t","kind":"transformer","plugin":"map","on_error":{"retry":{"max_attempts":4,"backoff_ms":10},"then":"skip"}},
        {"id":"o","kind":"loader","plugin":"null"},
        {"id":"dlq","kind":"loader","plugin":"file"}]})",
                                "m.json");
    EXPECT_EQ(m.stages[0].on_error.then, ErrorPolicy::Then::dead_letter);
    EXPECT_EQ(m.stages[0].on_error.dead_letter_index, 3u);
    EXPECT_EQ(m.stages[1].on_error.max_attempts, 4u);
    EXPECT_EQ(m.stages[1].on_error.backoff.count(), 10);
    EXPECT_EQ(m.stages[1].on_error.then, ErrorPolicy::Then::skip);
    EXPECT_EQ(m.stages[2].on_error.then, ErrorPolicy::Then::fail) << "from defaults";
    EXPECT_TRUE(m.stages[3].inputs.empty()) << "a dead-letter loader reads only dead letters";

    auto with = [](const std::string &policy, const std::string &extra = "") {
        return R"({"stages":[{"id":"a","kind":"extractor","plugin":"file","on_error":)" + policy +
               R"(},{"id":"o","kind":"loader","plugin":"null"})" + extra + "]}";
    };
    EXPECT_EQ(first_error(with(R"("retry")")), "m.json: /stages/0/on_error: unknown policy 'retry' (expected skip, dead_letter or fail)");
    EXPECT_EQ(first_error(with(R"("dead_letter")")),
              "m.json: /stages/0/on_error: dead_letter needs a stage: {\"then\": \"dead_letter\", \"dead_letter\": \"<loader id>\"}");
    EXPECT_EQ(first_error(with(R"({"then":"dead_letter"})")),
              "m.json: /stages/0/on_error/dead_letter: required with then: dead_letter (the id of a loader stage)");
    EXPECT_EQ(first_error(with(R"({"dead_letter":"nope"})")), "m.json: /stages/0/on_error/dead_letter: unknown stage 'nope'");
    EXPECT_EQ(first_error(with(R"({"dead_letter":"a"})")),
              "m.json: /stages/0/on_error/dead_letter: 'a' is an extractor; dead letters go to a loader");
    EXPECT_EQ(first_error(with(R"({"retry":{"attempts":3}})")),
              "m.json: /stages/0/on_error/retry/attempts: unknown key (expected one of: max_attempts, backoff_ms, max_backoff_ms)");
    EXPECT_EQ(first_error(with(R"({"retry":{"max_attempts":0}})")),
              "m.json: /stages/0/on_error/retry/max_attempts: expected a positive integer");
}

TEST(Manifest, UnreachableStages) {
    auto e = errors_of(R"({"stages":[{"id":"a","kind":"extractor","plugin":"file"},
        {"id":"o","kind":"loader","plugin":"null"},
        {"id":"x","kind":"transformer","plugin":"map","inputs":["y"]},
        {"id":"y","kind":"transformer","plugin":"map","inputs":["x"]}]})");
    ASSERT_FALSE(e.empty());
    EXPECT_EQ(e[0], "m.json: /stages/3/inputs/0: cycle: x <- y <- x");
}

TEST(Manifest, EveryProblemIsReportedNotJustTheFirst) {
    auto errors = errors_of(R"({"bogus":1,"stages":[{"id":"a","kind":"extractor","plugin":"x","threads":0},
                                                   {"id":"a","kind":"loader","plugin":"y"}]})");
    ASSERT_EQ(errors.size(), 3u);
    EXPECT_EQ(errors[0], "m.json: /bogus: unknown key (expected one of: name, description, plugin_dirs, allow_untrusted_plugins, state_dir, checkpoint_interval_ms, memory_limit_mb, max_error_rate, min_quality, fail_if_nothing_loaded, admin, defaults, stages)");
    EXPECT_EQ(errors[1], "m.json: /stages/0/threads: expected a positive integer");
    EXPECT_EQ(errors[2], "m.json: /stages/1/id: duplicate stage id 'a'");
}

TEST(Manifest, LoadingAMissingFileSaysSo) {
    try {
        load_manifest("/nonexistent/m.json");
        FAIL() << "expected an error";
    } catch (const ManifestError &e) {
        EXPECT_EQ(std::string(e.what()), "/nonexistent/m.json: cannot open manifest: No such file or directory");
    }
}

TEST(Manifest, LineAndColumn) {
    EXPECT_EQ(line_and_column("ab\ncd\nef", 0), (std::pair<size_t, size_t>{1, 1}));
    EXPECT_EQ(line_and_column("ab\ncd\nef", 4), (std::pair<size_t, size_t>{2, 2}));
    EXPECT_EQ(line_and_column("ab\ncd\nef", 6), (std::pair<size_t, size_t>{3, 1}));
}

TEST(ResourceConflicts, WritesAreMatchedAgainstReadPatternsDirectoriesAndTables) {
    using sluice::writes_what_is_read;
    EXPECT_TRUE(writes_what_is_read("file:///tmp/in/*.csv", "file:///tmp/in/a.csv"));
    EXPECT_TRUE(writes_what_is_read("file:///tmp/in/a.csv", "file:///tmp/in/./a.csv"));
    EXPECT_FALSE(writes_what_is_read("file:///tmp/in/*.csv", "file:///tmp/in/a.ndjson"));
    EXPECT_FALSE(writes_what_is_read("file:///tmp/in/*.csv", "file:///tmp/in/sub/a.csv")) << "a glob stays in its directory";
    EXPECT_TRUE(writes_what_is_read("file:///tmp/docs/", "file:///tmp/docs/sub/out.ndjson"));
    EXPECT_FALSE(writes_what_is_read("file:///tmp/docs/", "file:///tmp/docs2/out.ndjson"));
    EXPECT_TRUE(writes_what_is_read("sqlite:///tmp/x.db#t", "sqlite:///tmp/./x.db#t"));
    EXPECT_FALSE(writes_what_is_read("sqlite:///tmp/x.db#t", "sqlite:///tmp/x.db#u"));
    EXPECT_FALSE(writes_what_is_read("file:///tmp/x.db", "sqlite:///tmp/x.db#t"));
}
