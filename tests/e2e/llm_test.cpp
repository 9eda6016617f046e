// The llm plugin against a real HTTP server on loopback that speaks the
// OpenAI chat-completions protocol (tests/fake_openai, scripted per prompt).
#include "child_process.hpp"
#include "fake_openai_server.hpp"
#include "record_accounting.hpp"
#include "temp_dir.hpp"

#include <boost/json.hpp>
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <set>

using namespace sluice::test;
namespace bj = boost::json;
using namespace std::chrono_literals;

namespace {

const char *kSchema = R"({"type":"object","properties":{"category":{"type":"string"},"score":{"type":"number"}},"required":["category","score"]})";

// NDJSON records {"id": i, "text": ...} to enrich; `marker(i)` goes into the text.
template <class F> std::string records(int n, F marker) {
    std::string out;
    for (int i = 0; i < n; ++i)
        out += "{\"id\":" + std::to_string(i) + ",\"text\":\"item " + std::to_string(i) + " " + marker(i) + "\"}\n";
    return out;
}

// in.ndjson -> llm (with `config` added) -> out.ndjson; failures dead-lettered to dead.ndjson.
std::string manifest(const FakeOpenAI &fake, const std::string &config, const std::string &stage = "",
                     const std::string &extra = "") {
    return R"({"name":"llm_test",)" + extra + R"("stages":[
  {"id":"in","kind":"extractor","plugin":"file","config":{"path":"in.ndjson"}},
  {"id":"ai","kind":"enricher","plugin":"llm",)" + stage + R"("on_error":{"dead_letter":"dead"},
   "config":{"base_url":")" + fake.base_url() + R"(","model":"fake-model","prompt":"Classify: {{text}}",
             "response_schema":)" + kSchema + "," + config + R"(}},
  {"id":"out","kind":"loader","plugin":"file","config":{"path":"out.ndjson"}},
  {"id":"dead","kind":"loader","plugin":"file","config":{"path":"dead.ndjson"}}]})";
}

int64_t counter(const bj::object &report, const char *stage, const char *name) {
    for (const auto &s : report.at("stages").as_array())
        if (s.at("id").as_string() == stage) {
            const bj::value *v = s.at("counters").as_object().if_contains(name);
            return v ? v->to_number<int64_t>() : 0;
        }
    return -1;
}

ProcessResult run(const TempDir &dir, const std::string &m, const std::string &report = "r.json") {
    dir.write("m.json", m);
    return run_sluice({"run", dir / "m.json", "--report", dir / report});
}

} // namespace

TEST(Llm, EnrichesEveryRecordWithinTheInFlightLimit) {
    FakeOpenAI fake({"--latency-ms", "40"});
    TempDir dir;
    dir.write("in.ndjson", records(60, [](int) { return ""; }));
    ProcessResult r = run(dir, manifest(fake, R"("max_in_flight":4)", R"("threads":2,)"));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    auto out = read_lines(dir / "out.ndjson");
    ASSERT_EQ(out.size(), 60u);
    for (const auto &line : out) {
        bj::object o = bj::parse(line).as_object();
        ASSERT_TRUE(o.contains("llm")) << line;
        EXPECT_TRUE(o["llm"].at("category").is_string());
        EXPECT_TRUE(o["llm"].at("score").is_number());
        EXPECT_TRUE(o.contains("text")) << "the record itself is kept";
    }
    bj::object stats = fake.stats();
    EXPECT_EQ(stats.at("requests").to_number<int64_t>(), 60);
    EXPECT_EQ(stats.at("max_in_flight").to_number<int64_t>(), 4) << "the limit, and the limit reached";
    bj::object rep = read_checked_report(dir / "r.json");
    EXPECT_EQ(counter(rep, "ai", "requests"), 60);
    EXPECT_EQ(counter(rep, "ai", "enriched"), 60);
    EXPECT_GT(counter(rep, "ai", "prompt_tokens"), 0);
    EXPECT_GT(counter(rep, "ai", "completion_tokens"), 0);
    EXPECT_GE(counter(rep, "ai", "latency_p50_ms"), 40);
    EXPECT_GE(counter(rep, "ai", "latency_p99_ms"), counter(rep, "ai", "latency_p50_ms"));
    const bj::object *ai = nullptr;
    for (const auto &s : rep.at("stages").as_array())
        if (s.at("id").as_string() == "ai") ai = &s.as_object();
    EXPECT_DOUBLE_EQ(ai->at("enrichment_rate").to_number<double>(), 1.0);
    // The summary line comes from what the plugin declared (sluice.metrics/1),
    // not from the host knowing the llm plugin.
    EXPECT_NE(r.err.find("  ai: enrichment rate 1.000 (60 of 60); 60 requests, 0 retries, 0 cache hits, "),
              std::string::npos)
        << r.err;
    EXPECT_NE(r.err.find(" completion tokens; latency p50 "), std::string::npos) << r.err;
}

TEST(Llm, RetriesTransientFailuresHonouringRetryAfter) {
    FakeOpenAI fake({"--retry-after", "1"});
    TempDir dir;
    dir.write("in.ndjson", records(4, [](int i) { return i == 0 ? "[[fake:429-once]]" : i == 1 ? "[[fake:500-once]]" : ""; }));
    auto t0 = std::chrono::steady_clock::now();
    ProcessResult r = run(dir, manifest(fake, R"("retry":{"max_attempts":3,"backoff_ms":20})"));
    auto took = std::chrono::steady_clock::now() - t0;
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(read_lines(dir / "out.ndjson").size(), 4u);
    EXPECT_GE(took, 1s) << "Retry-After: 1 was honoured";
    bj::object rep = read_checked_report(dir / "r.json");
    EXPECT_EQ(counter(rep, "ai", "retries"), 2);
    EXPECT_EQ(counter(rep, "ai", "requests"), 6);
}

TEST(Llm, BadRepliesReachTheErrorPathWithTheRecordIntact) {
    FakeOpenAI fake;
    TempDir dir;
    const char *markers[] = {"[[fake:malformed]]", "[[fake:violate]]", "[[fake:500]]", "[[fake:429]]",
                             "[[fake:slow=1200]]", "[[fake:violate-once]]", ""};
    dir.write("in.ndjson", records(7, [&](int i) { return markers[i]; }));
    ProcessResult r = run(dir, manifest(fake, R"("timeout_ms":500,"retry":{"max_attempts":2,"backoff_ms":10})"));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    // violate-once is repaired; the plain one passes.
    auto out = read_lines(dir / "out.ndjson");
    EXPECT_EQ(out.size(), 2u);
    std::map<int64_t, std::string> errors;
    for (const auto &line : read_lines(dir / "dead.ndjson")) {
        bj::object d = bj::parse(line).as_object();
        const bj::object &rec = d.at("record").as_object();
        int64_t id = rec.at("id").to_number<int64_t>();
        EXPECT_EQ(rec.at("text").as_string(), "item " + std::to_string(id) + " " + markers[id]) << "record intact";
        EXPECT_FALSE(rec.contains("llm"));
        errors[id] = std::string(d.at("error").as_string());
    }
    ASSERT_EQ(errors.size(), 5u);
    EXPECT_NE(errors[0].find("llm: the answer is not valid JSON"), std::string::npos) << errors[0];
    EXPECT_NE(errors[0].find("(after 1 repair attempts); the model replied: Sure! Here is your answer"), std::string::npos)
        << errors[0];
    EXPECT_NE(errors[1].find("llm: the answer does not match the schema: /category: expected a string"),
              std::string::npos) << errors[1];
    EXPECT_NE(errors[1].find("the model replied: {"), std::string::npos) << errors[1];
    EXPECT_EQ(errors[2], "llm: gave up after 2 attempts: HTTP 500: boom");
    EXPECT_EQ(errors[3], "llm: gave up after 2 attempts: HTTP 429: rate limited");
    EXPECT_EQ(errors[4], "llm: gave up after 2 attempts: no answer within the timeout");
    bj::object rep = read_checked_report(dir / "r.json");
    EXPECT_EQ(counter(rep, "ai", "repairs"), 3) << "malformed, violate and violate-once each got one";
    EXPECT_EQ(counter(rep, "ai", "enriched"), 2);
    // The run's enrichment rate (the status page's figure) is the stage's
    // own: 2 of the 7 records it was given.
    EXPECT_NEAR(rep.at("quality").at("enrichment_rate").to_number<double>(), 2.0 / 7.0, 1e-9) << rep.at("quality");
}

TEST(Llm, ARerunIsAnsweredFromTheCache) {
    FakeOpenAI fake;
    TempDir dir;
    dir.write("in.ndjson", records(20, [](int) { return ""; }));
    std::string m = manifest(fake, R"("cache_path":"cache.sqlite")");
    ASSERT_EQ(run(dir, m).exit_code, 0);
    std::string first = read_file(dir / "out.ndjson");
    EXPECT_EQ(fake.stats().at("requests").to_number<int64_t>(), 20);
    fake.reset();
    ProcessResult again = run(dir, m, "r2.json");
    ASSERT_EQ(again.exit_code, 0) << again.err;
    EXPECT_EQ(fake.stats().at("requests").to_number<int64_t>(), 0) << "nothing asked twice";
    EXPECT_EQ(read_file(dir / "out.ndjson"), first);
    EXPECT_EQ(counter(read_checked_report(dir / "r2.json"), "ai", "cache_hits"), 20);
}

TEST(Llm, IdenticalPromptsInFlightShareOneRequest) {
    FakeOpenAI fake({"--latency-ms", "100"});
    TempDir dir;
    std::string same;
    for (int i = 0; i < 10; ++i) same += "{\"text\":\"the same text\"}\n";
    dir.write("in.ndjson", same);
    ASSERT_EQ(run(dir, manifest(fake, R"("max_in_flight":10)")).exit_code, 0);
    EXPECT_EQ(fake.stats().at("requests").to_number<int64_t>(), 1);
    EXPECT_EQ(read_lines(dir / "out.ndjson").size(), 10u);
    EXPECT_EQ(counter(read_checked_report(dir / "r.json"), "ai", "deduplicated"), 9);
}

TEST(Llm, MicroBatchesAreSplitBackPerRecord) {
    FakeOpenAI fake;
    TempDir dir;
    dir.write("in.ndjson", records(12, [](int) { return ""; }));
    ASSERT_EQ(run(dir, manifest(fake, R"("batch_records":4)")).exit_code, 0);
    EXPECT_EQ(fake.stats().at("requests").to_number<int64_t>(), 3);
    auto out = read_lines(dir / "out.ndjson");
    ASSERT_EQ(out.size(), 12u);
    std::set<std::string> categories;
    for (const auto &line : out) {
        bj::object o = bj::parse(line).as_object();
        ASSERT_TRUE(o.contains("llm")) << line;
        EXPECT_FALSE(o["llm"].as_object().contains("index"));
        categories.insert(std::string(o["llm"].at("category").as_string()));
    }
    EXPECT_EQ(categories.size(), 12u) << "each record got its own result";
}

TEST(Llm, TheApiKeyIsSentAsBearerAndNeverLogged) {
    FakeOpenAI fake({"--latency-ms", "5"});
    TempDir dir;
    dir.write("in.ndjson", records(3, [](int i) { return i == 2 ? "[[fake:500]]" : ""; }));
    setenv("SLUICE_TEST_LLM_KEY", "sk-test-very-secret", 1);
    dir.write("m.json", manifest(fake, R"("api_key_env":"SLUICE_TEST_LLM_KEY","retry":{"max_attempts":1})"));
    ProcessResult r = run_sluice({"run", dir / "m.json", "--report", dir / "r.json", "--log-level", "debug"});
    unsetenv("SLUICE_TEST_LLM_KEY");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    bj::array auth = fake.stats().at("authorization").as_array();
    ASSERT_EQ(auth.size(), 1u);
    EXPECT_EQ(auth[0].as_string(), "Bearer sk-test-very-secret");
    for (const std::string &text : {r.err, r.out, read_file(dir / "r.json"), read_file(dir / "dead.ndjson")})
        EXPECT_EQ(text.find("very-secret"), std::string::npos) << text;

    // A missing variable is a config error before anything runs.
    ProcessResult missing = run_sluice({"validate", dir / "m.json"});
    EXPECT_EQ(missing.exit_code, 2);
    EXPECT_NE(missing.err.find("api_key_env: environment variable SLUICE_TEST_LLM_KEY is not set"),
              std::string::npos) << missing.err;
}

TEST(Llm, ATokenBudgetStopsEnrichingAndTheRestTakesTheErrorPath) {
    FakeOpenAI fake;
    TempDir dir;
    dir.write("in.ndjson", records(30, [](int) { return ""; }));
    // Each request costs about 30 tokens: the budget lasts a few requests.
    ProcessResult r = run(dir, manifest(fake, R"("token_budget":100,"max_in_flight":1)", R"("batch_size":5,)"));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    auto out = read_lines(dir / "out.ndjson");
    auto dead = read_lines(dir / "dead.ndjson");
    EXPECT_GT(out.size(), 0u);
    EXPECT_LT(out.size(), 10u);
    EXPECT_EQ(out.size() + dead.size(), 30u);
    EXPECT_NE(dead.at(0).find("llm: token budget spent (100 tokens)"), std::string::npos) << dead.at(0);
    bj::object rep = read_checked_report(dir / "r.json");
    EXPECT_EQ(counter(rep, "ai", "budget_exhausted"), int64_t(dead.size()));
    EXPECT_LE(counter(rep, "ai", "prompt_tokens") + counter(rep, "ai", "completion_tokens"), 100 + 40);
}

TEST(Llm, ExtractTurnsTextIntoFieldsUnderASchema) {
    FakeOpenAI fake;
    TempDir dir;
    dir.write("in.ndjson", "{\"doc\":\"Invoice 17 from ACME, total 120 EUR\",\"src\":\"mail\"}\n");
    const std::string schema = R"({"type":"object","properties":{"vendor":{"type":"string"},"total":{"type":"number"}},"required":["vendor","total"]})";
    for (const std::string mode : {"merge", "replace"}) {
        dir.write("m.json", R"({"name":"x","stages":[
  {"id":"in","kind":"extractor","plugin":"file","config":{"path":"in.ndjson"}},
  {"id":"structure","kind":"transformer","plugin":"llm_extract","config":{"base_url":")" +
                                fake.base_url() + R"(","model":"m","text_field":"doc","mode":")" + mode +
                                R"(","keep_fields":["src"],"drop_text":true,"response_schema":)" + schema + R"(}},
  {"id":"out","kind":"loader","plugin":"file","config":{"path":"out.ndjson"}}]})");
        ProcessResult r = run_sluice({"run", dir / "m.json"});
        ASSERT_EQ(r.exit_code, 0) << r.err;
        bj::object o = bj::parse(read_lines(dir / "out.ndjson").at(0)).as_object();
        EXPECT_TRUE(o.at("vendor").is_string()) << mode;
        EXPECT_TRUE(o.at("total").is_number()) << mode;
        EXPECT_EQ(o.at("src").as_string(), "mail") << mode;
        EXPECT_FALSE(o.contains("doc")) << mode;
    }
}

TEST(Llm, SpeaksHttpsAndVerifiesTheCertificate) {
    TempDir dir;
    // A self-signed certificate for localhost, made for this test.
    std::string cmd = "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=localhost "
                      "-addext subjectAltName=DNS:localhost -keyout " + dir / "key.pem" + " -out " + dir / "cert.pem" +
                      " > /dev/null 2>&1";
    ASSERT_EQ(std::system(cmd.c_str()), 0);
    FakeOpenAI fake({"--tls-cert", dir / "cert.pem", "--tls-key", dir / "key.pem"});
    dir.write("in.ndjson", records(3, [](int) { return ""; }));
    ProcessResult ok = run(dir, manifest(fake, "\"ca_file\":\"" + dir / "cert.pem" + "\""));
    ASSERT_EQ(ok.exit_code, 0) << ok.err;
    EXPECT_EQ(read_lines(dir / "out.ndjson").size(), 3u);

    // Without trusting it: every record fails on the certificate.
    ProcessResult refused = run(dir, manifest(fake, R"("retry":{"max_attempts":1})"), "r2.json");
    ASSERT_EQ(refused.exit_code, 3) << "every record failed: " << refused.err;
    auto dead = read_lines(dir / "dead.ndjson");
    ASSERT_EQ(dead.size(), 3u);
    EXPECT_NE(dead[0].find("certificate verify failed"), std::string::npos) << dead[0];
}

TEST(Llm, TheExamplesRun) {
    TempDir dir;
    std::filesystem::copy(std::string(SLUICE_SOURCE_DIR) + "/pipelines", dir / "pipelines",
                          std::filesystem::copy_options::recursive);
    // Offline: the text enricher.
    ProcessResult text = run_sluice({"run", dir / "pipelines/tickets_text.json", "--report", dir / "t.json"});
    ASSERT_EQ(text.exit_code, 0) << text.err;
    auto enriched = read_lines(dir / "out/tickets_text/tickets.ndjson");
    ASSERT_EQ(enriched.size(), 6u);
    EXPECT_EQ(bj::parse(enriched[1]).at("facts").at("language"), "de");
    read_checked_report(dir / "t.json");

    // The Ollama example, pointed at the fake server instead.
    FakeOpenAI fake;
    std::string m = read_file(dir / "pipelines/tickets_llm.json");
    m.replace(m.find("http://localhost:11434"), 22, fake.base_url());
    dir.write("pipelines/tickets_llm.json", m);
    ProcessResult llm = run_sluice({"run", dir / "pipelines/tickets_llm.json", "--report", dir / "l.json"});
    ASSERT_EQ(llm.exit_code, 0) << llm.err;
    auto triaged = read_lines(dir / "out/tickets_llm/tickets.ndjson");
    ASSERT_EQ(triaged.size(), 6u);
    bj::object t = bj::parse(triaged[0]).at("triage").as_object();
    EXPECT_EQ(t.at("sentiment"), "positive") << "the schema's first choice, from the fake";
    EXPECT_TRUE(std::filesystem::exists(dir / "out/tickets_llm/llm_cache.sqlite"));
    read_checked_report(dir / "l.json");
}

TEST(Llm, RequestsPerSecondPacesTheRequests) {
    FakeOpenAI fake;
    TempDir dir;
    dir.write("in.ndjson", records(11, [](int) { return ""; }));
    auto t0 = std::chrono::steady_clock::now();
    ProcessResult r = run(dir, manifest(fake, R"("requests_per_second":20,"max_in_flight":8)"));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_GE(std::chrono::steady_clock::now() - t0, 450ms) << "11 requests at 20 a second take half a second";
    EXPECT_EQ(fake.stats().at("requests").to_number<int64_t>(), 11);
}
