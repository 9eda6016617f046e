#include "pipeline_tests.hpp"

#include "document.hpp"
#include "dry_run.hpp"
#include "graph.hpp"
#include "kinds.hpp"
#include "manifest.hpp"
#include "pipeline.hpp"

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <mutex>
#include <optional>
#include <set>

namespace sluice {

namespace bj = boost::json;

TestFileError::TestFileError(std::vector<std::string> messages)
    : std::runtime_error(messages.empty() ? std::string("invalid test file") : messages.front()),
      messages_(std::move(messages)) {}

namespace {

std::optional<std::map<std::string, std::string>> parse_env(const bj::value &v, const std::string &path,
                                                            std::vector<std::string> &problems) {
    if (!v.is_object()) {
        problems.push_back(path + ": expected an object of NAME: value");
        return std::nullopt;
    }
    std::map<std::string, std::string> env;
    for (const auto &kv : v.get_object()) {
        const bj::value &x = kv.value();
        if (x.is_string()) env[std::string(kv.key())] = std::string(x.get_string());
        else if (x.is_number() || x.is_bool()) env[std::string(kv.key())] = bj::serialize(x);
        else problems.push_back(path + "/" + std::string(kv.key()) + ": expected a string");
    }
    return env;
}

TestInput parse_input(const bj::value &v, const std::string &path, std::vector<std::string> &problems) {
    TestInput in;
    in.json_path = path;
    if (!v.is_object()) {
        problems.push_back(path + ": expected an object such as {\"stage\": \"clean\", \"records\": [...]}");
        return in;
    }
    const bj::object &o = v.get_object();
    std::vector<std::pair<std::string, std::string>> attributes;
    std::string content_type = "text/plain";
    for (const auto &kv : o) {
        const std::string key(kv.key()), at = path + "/" + key;
        const bj::value &x = kv.value();
        if (key == "stage") {
            if (!x.is_string() || x.get_string().empty()) problems.push_back(at + ": expected a stage id");
            else in.stage = std::string(x.get_string());
        } else if (key == "attributes") {
            if (auto a = parse_env(x, at, problems))
                for (auto &[k, val] : *a) attributes.emplace_back(k, val);
        } else if (key == "content_type") {
            if (!x.is_string() || x.get_string().empty()) problems.push_back(at + ": expected a MIME type");
            else content_type = std::string(x.get_string());
        } else if (key != "records" && key != "texts") {
            problems.push_back(at + ": unknown key (expected stage, records, texts, content_type, attributes)");
        }
    }
    if (in.stage.empty() && !o.contains("stage")) problems.push_back(path + "/stage: required key is missing");
    if (!o.contains("records") && !o.contains("texts"))
        problems.push_back(path + ": give \"records\" (JSON) or \"texts\" (text records)");
    if (const bj::value *r = o.if_contains("records")) {
        if (!r->is_array()) problems.push_back(path + "/records: expected a list of JSON records");
        else
            for (const bj::value &rec : r->get_array()) in.records.push_back({bj::serialize(rec), "", attributes});
    }
    if (const bj::value *t = o.if_contains("texts")) {
        if (!t->is_array()) problems.push_back(path + "/texts: expected a list of strings");
        else
            for (const bj::value &s : t->get_array()) {
                if (!s.is_string()) {
                    problems.push_back(path + "/texts: expected a list of strings");
                    break;
                }
                in.records.push_back({std::string(s.get_string()), content_type, attributes});
            }
    }
    return in;
}

// Sets variables for the life of a case, then puts back what was there.
class EnvironmentOverride {
public:
    explicit EnvironmentOverride(const std::map<std::string, std::string> &values) {
        for (const auto &[k, v] : values) {
            const char *old = std::getenv(k.c_str());
            saved_.emplace_back(k, old ? std::optional<std::string>(old) : std::nullopt);
            ::setenv(k.c_str(), v.c_str(), 1);
        }
    }
    ~EnvironmentOverride() {
        for (auto it = saved_.rbegin(); it != saved_.rend(); ++it) {
            if (it->second) ::setenv(it->first.c_str(), it->second->c_str(), 1);
            else ::unsetenv(it->first.c_str());
        }
    }

private:
    std::vector<std::pair<std::string, std::optional<std::string>>> saved_;
};

// What the capture stages of one case received, by stage id.
class Collector : public RecordSink {
public:
    void take(const std::string &stage, const sluice_record &r) override {
        CapturedRecord c;
        c.payload.assign(r.payload, r.payload_len);
        if (r.content_type && std::string_view(r.content_type) != SLUICE_CONTENT_JSON) c.content_type = r.content_type;
        for (uint32_t i = 0; i < r.attr_count; ++i)
            c.attributes.emplace_back(std::string(r.attrs[i].key, r.attrs[i].key_len),
                                      std::string(r.attrs[i].value, r.attrs[i].value_len));
        std::lock_guard<std::mutex> lock(mutex_);
        records_[stage].push_back(std::move(c));
    }
    std::vector<CapturedRecord> of(const std::string &stage) {
        std::lock_guard<std::mutex> lock(mutex_);
        auto it = records_.find(stage);
        return it == records_.end() ? std::vector<CapturedRecord>() : it->second;
    }

private:
    std::mutex mutex_;
    std::map<std::string, std::vector<CapturedRecord>> records_;
};

class SinkRegistration {
public:
    SinkRegistration(std::string name, std::shared_ptr<RecordSink> sink) : name_(std::move(name)) {
        register_record_sink(name_, std::move(sink));
    }
    ~SinkRegistration() { unregister_record_sink(name_); }

private:
    std::string name_;
};

// An id no stage of `m` has, starting with `base`.
std::string free_id(const Manifest &m, const std::string &base) {
    std::set<std::string> ids;
    for (const StageSpec &s : m.stages) ids.insert(s.id);
    std::string id = base;
    for (int i = 2; ids.count(id); ++i) id = base + "_" + std::to_string(i);
    return id;
}

const bj::object *report_stage(const bj::object &report, const std::string &id) {
    const bj::value *stages = report.if_contains("stages");
    if (!stages || !stages->is_array()) return nullptr;
    for (const bj::value &s : stages->get_array())
        if (s.is_object() && s.get_object().at("id").as_string() == id) return &s.get_object();
    return nullptr;
}

std::string stage_label(const Expectation &e) { return e.output.empty() ? e.stage : e.stage + "." + e.output; }

} // namespace

TestFile parse_test_file(const std::string &text, const std::string &path) {
    Document doc;
    try {
        doc = parse_document(text, path);
    } catch (const DocumentSyntaxError &e) {
        throw TestFileError({e.what()});
    }
    std::vector<std::string> problems;
    TestFile file;
    file.path = path;
    const bj::value &root = doc.root;
    if (!root.is_object()) throw TestFileError({path + ": /: expected an object with \"tests\""});
    const bj::object &top = root.get_object();
    for (const auto &kv : top)
        if (kv.key() != "env" && kv.key() != "tests" && kv.key().substr(0, 2) != "x-")
            problems.push_back("/" + std::string(kv.key()) + ": unknown key (expected env, tests)");
    if (const bj::value *env = top.if_contains("env"))
        if (auto e = parse_env(*env, "/env", problems)) file.env = *e;
    const bj::value *tests = top.if_contains("tests");
    if (!tests) problems.push_back("/tests: required key is missing");
    else if (!tests->is_array() || tests->get_array().empty())
        problems.push_back("/tests: expected a non-empty list of test cases");
    else {
        std::set<std::string> names;
        for (size_t i = 0; i < tests->get_array().size(); ++i) {
            const std::string p = "/tests/" + std::to_string(i);
            const bj::value &t = tests->get_array()[i];
            if (!t.is_object()) {
                problems.push_back(p + ": expected a test case object");
                continue;
            }
            const bj::object &o = t.get_object();
            TestCase c;
            c.json_path = p;
            for (const auto &kv : o)
                if (kv.key() != "name" && kv.key() != "env" && kv.key() != "inputs" && kv.key() != "expect")
                    problems.push_back(p + "/" + std::string(kv.key()) +
                                       ": unknown key (expected name, env, inputs, expect)");
            if (const bj::value *n = o.if_contains("name"); n && n->is_string() && !n->get_string().empty())
                c.name = std::string(n->get_string());
            else problems.push_back(p + "/name: expected the case's name");
            if (!c.name.empty() && !names.insert(c.name).second)
                problems.push_back(p + "/name: duplicate case name '" + c.name + "'");
            if (const bj::value *env = o.if_contains("env"))
                if (auto e = parse_env(*env, p + "/env", problems)) c.env = *e;
            if (const bj::value *in = o.if_contains("inputs")) {
                if (!in->is_array()) problems.push_back(p + "/inputs: expected a list of inputs");
                else
                    for (size_t k = 0; k < in->get_array().size(); ++k)
                        c.inputs.push_back(parse_input(in->get_array()[k], p + "/inputs/" + std::to_string(k), problems));
            }
            const bj::value *ex = o.if_contains("expect");
            if (!ex || !ex->is_array() || ex->get_array().empty())
                problems.push_back(p + "/expect: expected a non-empty list of expectations");
            else
                for (size_t k = 0; k < ex->get_array().size(); ++k)
                    c.expect.push_back(parse_expectation(ex->get_array()[k], p + "/expect/" + std::to_string(k), problems));
            file.cases.push_back(std::move(c));
        }
    }
    if (!problems.empty()) {
        // Each problem as "FILE[:LINE:COL]: /path: what".
        for (std::string &m : problems) m = doc.positions.place(path + ": " + m, path);
        throw TestFileError(std::move(problems));
    }
    return file;
}

TestFile load_test_file(const std::string &path) {
    std::string text;
    try {
        text = read_text_file(path, "test file");
    } catch (const std::exception &e) {
        throw TestFileError({e.what()});
    }
    return parse_test_file(text, path);
}

CaseResult run_test_case(const std::string &manifest_path, const std::vector<std::string> &plugin_dirs,
                         const TestFile &file, const TestCase &test) {
    CaseResult result;
    const auto t0 = std::chrono::steady_clock::now();
    auto finish = [&]() -> CaseResult {
        result.passed = result.failures.empty();
        result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        return result;
    };
    std::map<std::string, std::string> env = file.env;
    for (const auto &[k, v] : test.env) env[k] = v;
    EnvironmentOverride environment(env);

    Manifest m;
    try {
        m = load_manifest(manifest_path);
    } catch (const ManifestError &e) {
        result.failures = e.messages();
        return finish();
    }
    m.plugin_dirs.insert(m.plugin_dirs.begin(), plugin_dirs.begin(), plugin_dirs.end());
    // No state, no admin endpoint, no thresholds: a case checks records.
    m.state_dir.clear();
    m.admin.reset();
    m.thresholds = RunThresholds{};
    m.thresholds.fail_if_nothing_loaded = false;

    static std::atomic<uint64_t> cases_run{0};
    const std::string sink = "test-" + std::to_string(cases_run.fetch_add(1));
    auto collector = std::make_shared<Collector>();
    SinkRegistration registration(sink, collector);

    std::map<std::string, size_t> index;
    for (size_t i = 0; i < m.stages.size(); ++i) index[m.stages[i].id] = i;
    auto where = [&](const std::string &json_path) { return file.path + ": " + json_path + "/stage: "; };
    auto stage_list = [&] {
        std::string list;
        for (const StageSpec &s : m.stages) list += (list.empty() ? "" : ", ") + s.id;
        return list;
    };
    for (const TestInput &in : test.inputs)
        if (!index.count(in.stage))
            result.failures.push_back(where(in.json_path) + "unknown stage '" + in.stage + "' (the manifest has: " +
                                      stage_list() + ")");
    for (const Expectation &e : test.expect) {
        auto it = index.find(e.stage);
        if (it == index.end())
            result.failures.push_back(where(e.json_path) + "unknown stage '" + e.stage + "' (the manifest has: " +
                                      stage_list() + ")");
        else if (m.stages[it->second].kind == SLUICE_KIND_LOADER && !e.output.empty())
            result.failures.push_back(where(e.json_path) + "'" + e.stage +
                                      "' is a loader: it has no outputs; name it alone to see what it received");
    }
    if (!result.failures.empty()) return finish();

    // Sources give the case's records; destinations capture.
    for (StageSpec &s : m.stages) {
        if (s.kind == SLUICE_KIND_EXTRACTOR) {
            std::vector<GivenRecord> records;
            for (const TestInput &in : test.inputs)
                if (in.stage == s.id) records.insert(records.end(), in.records.begin(), in.records.end());
            s.plugin = kRecordsStage;
            s.library.reset();
            s.config = records_stage_config(records);
            s.raw_config = s.config;
            s.isolation = Isolation{};
            s.threads = 1;
            s.timeout_ms = 0;
        } else if (s.kind == SLUICE_KIND_LOADER) {
            capture_instead(s, sink);
        }
    }
    // Records given to a stage that is not an extractor come from a records
    // stage of their own, as one more input of that stage.
    for (const TestInput &in : test.inputs) {
        if (m.stages[index.at(in.stage)].kind == SLUICE_KIND_EXTRACTOR) continue;
        StageSpec source;
        source.id = free_id(m, "test_input");
        source.kind = SLUICE_KIND_EXTRACTOR;
        source.plugin = kRecordsStage;
        source.config = records_stage_config(in.records);
        source.raw_config = source.config;
        source.json_path = in.json_path;
        m.stages[index.at(in.stage)].inputs.push_back(InputRef{source.id, "", 0, in.json_path + "/stage"});
        m.stages.push_back(std::move(source));
    }
    // What a stage other than a loader sends on an output is captured by a
    // loader of its own reading that output.
    std::map<size_t, std::string> captured_at; // expectation -> capture stage id
    for (size_t k = 0; k < test.expect.size(); ++k) {
        const Expectation &e = test.expect[k];
        if (!e.looks_at_records()) continue;
        if (m.stages[index.at(e.stage)].kind == SLUICE_KIND_LOADER) {
            captured_at[k] = e.stage;
            continue;
        }
        StageSpec capture;
        capture.id = free_id(m, "test_expect");
        capture.kind = SLUICE_KIND_LOADER;
        capture.ordered = true;
        capture.json_path = e.json_path;
        capture.inputs.push_back(InputRef{e.stage, e.output, 0, e.json_path + "/stage"});
        capture_instead(capture, sink);
        captured_at[k] = capture.id;
        m.stages.push_back(std::move(capture));
    }
    for (const std::string &problem : resolve_graph(m)) result.failures.push_back(m.path + ": " + problem);
    if (!result.failures.empty()) return finish();

    RunResult run;
    try {
        Pipeline pipeline(std::move(m));
        run = pipeline.run(RunOptions{});
    } catch (const SetupError &e) {
        // A message about a stage the case added names the test file.
        for (std::string msg : e.messages()) {
            if (size_t p = msg.find(": /tests/"); p != std::string::npos) msg = file.path + msg.substr(p);
            result.failures.push_back(msg);
        }
        return finish();
    }
    if (run.status == "failed") {
        result.failures.push_back("the pipeline failed: " + run.error);
        return finish();
    }
    for (size_t k = 0; k < test.expect.size(); ++k) {
        const Expectation &e = test.expect[k];
        const std::string label = e.json_path + " (" + stage_label(e) + "): ";
        if (auto it = captured_at.find(k); it != captured_at.end())
            for (const std::string &f : check_records(e, collector->of(it->second))) result.failures.push_back(label + f);
        if (e.rejected || e.errors) {
            const bj::object *s = report_stage(run.report, e.stage);
            static const bj::array none;
            const bj::array &rejects = s ? s->at("reject_reasons").as_array() : none;
            const bj::array &errors = s ? s->at("error_reasons").as_array() : none;
            if (e.rejected)
                for (const std::string &f : check_reasons("reject", *e.rejected, rejects))
                    result.failures.push_back(label + f);
            if (e.errors)
                for (const std::string &f : check_reasons("error", *e.errors, errors)) result.failures.push_back(label + f);
        }
    }
    return finish();
}

} // namespace sluice
