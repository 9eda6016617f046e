#include "manifest.hpp"

#include "document.hpp"
#include "file_sha256.hpp"
#include "graph.hpp"
#include "interpolation.hpp"
#include "kinds.hpp"

#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

namespace sluice {

namespace bj = boost::json;
namespace fs = std::filesystem;

ManifestError::ManifestError(std::vector<std::string> messages)
    : std::runtime_error(messages.empty() ? std::string("invalid manifest") : messages.front()),
      messages_(std::move(messages)) {}

namespace {

// Collects problems; every check names the JSON path of what it looks at.
class Checker {
public:
    Checker(std::string file, const Document &doc) : file_(std::move(file)), doc_(doc) {}

    // "FILE: /path: what", or "FILE:LINE:COLUMN: /path: what" when the
    // document knows where the path is written (YAML).
    void error(const std::string &path, const std::string &what) {
        error_line((path.empty() ? std::string("/") : path) + ": " + what);
    }
    // A problem already formatted as "PATH: what".
    void error_line(const std::string &line) { errors_.push_back(doc_.positions.place(file_ + ": " + line, file_)); }
    bool ok() const { return errors_.empty(); }
    std::vector<std::string> take() { return std::move(errors_); }

    // Reports keys of `obj` outside `allowed`.
    void known_keys(const bj::object &obj, const std::string &path,
                    std::initializer_list<const char *> allowed) {
        for (const auto &kv : obj) {
            bool found = false;
            for (const char *a : allowed) found = found || kv.key() == a;
            if (!found) {
                std::string list;
                for (const char *a : allowed) list += (list.empty() ? "" : ", ") + std::string(a);
                error(path + "/" + std::string(kv.key()), "unknown key (expected one of: " + list + ")");
            }
        }
    }

    std::optional<std::string> string(const bj::object &obj, const std::string &path, const char *key,
                                      bool required) {
        const bj::value *v = obj.if_contains(key);
        if (!v) {
            if (required) error(path + "/" + key, "required key is missing");
            return std::nullopt;
        }
        if (!v->is_string() || v->get_string().empty()) {
            error(path + "/" + key, "expected a non-empty string");
            return std::nullopt;
        }
        return std::string(v->get_string());
    }

    // A positive integer no greater than `max`, or `def` when absent.
    uint32_t positive(const bj::object &obj, const std::string &path, const char *key, uint32_t def,
                      uint32_t max) {
        return bounded(obj, path, key, def, 1, max);
    }
    // An integer from `min` to `max`, or `def` when absent.
    uint32_t bounded(const bj::object &obj, const std::string &path, const char *key, uint32_t def, uint32_t min,
                     uint32_t max) {
        const char *expected = min == 0 ? "expected a whole number, 0 or more" : "expected a positive integer";
        const bj::value *v = obj.if_contains(key);
        if (!v) return def;
        int64_t n = 0;
        if (v->is_int64()) n = v->get_int64();
        else if (v->is_uint64()) n = v->get_uint64() > INT64_MAX ? INT64_MAX : int64_t(v->get_uint64());
        else {
            error(path + "/" + key, expected);
            return def;
        }
        if (n < int64_t(min)) {
            error(path + "/" + key, expected);
            return def;
        }
        if (n > int64_t(max)) {
            error(path + "/" + key, "must be at most " + std::to_string(max));
            return def;
        }
        return uint32_t(n);
    }

    // A number from 0 to 1 (a rate or a score), or nothing when absent.
    std::optional<double> fraction(const bj::object &obj, const std::string &path, const char *key) {
        const bj::value *v = obj.if_contains(key);
        if (!v) return std::nullopt;
        if (!v->is_number() || v->to_number<double>() < 0 || v->to_number<double>() > 1) {
            error(path + "/" + key, "expected a number from 0 to 1");
            return std::nullopt;
        }
        return v->to_number<double>();
    }

private:
    std::string file_;
    const Document &doc_;
    std::vector<std::string> errors_;
};

bool valid_stage_id(const std::string &id) {
    for (char c : id)
        if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-')) return false;
    return !id.empty();
}

std::string resolve(const std::string &base_dir, const std::string &p) {
    if (p.empty() || p.front() == '/') return p;
    return (fs::path(base_dir) / p).lexically_normal().string();
}

// "on_error": "skip" | "fail" | {"retry": {...}, "then": ..., "dead_letter": "stage"}
ErrorPolicy parse_error_policy(const bj::value &v, const std::string &path, Checker &check) {
    ErrorPolicy p;
    auto then_from = [&](const std::string &name, const std::string &at) {
        if (name == "skip") p.then = ErrorPolicy::Then::skip;
        else if (name == "fail") p.then = ErrorPolicy::Then::fail;
        else if (name == "dead_letter") p.then = ErrorPolicy::Then::dead_letter;
        else check.error(at, "unknown policy '" + name + "' (expected skip, dead_letter or fail)");
    };
    if (v.is_string()) {
        then_from(std::string(v.get_string()), path);
        if (p.then == ErrorPolicy::Then::dead_letter)
            check.error(path, "dead_letter needs a stage: {\"then\": \"dead_letter\", \"dead_letter\": \"<loader id>\"}");
        return p;
    }
    if (!v.is_object()) {
        check.error(path, "expected \"skip\", \"fail\" or an object with retry, then, dead_letter");
        return p;
    }
    const bj::object &o = v.get_object();
    check.known_keys(o, path, {"retry", "then", "dead_letter"});
    if (auto dl = check.string(o, path, "dead_letter", false)) {
        p.dead_letter = *dl;
        p.then = ErrorPolicy::Then::dead_letter;
    }
    if (auto then = check.string(o, path, "then", false)) then_from(*then, path + "/then");
    if (p.then == ErrorPolicy::Then::dead_letter && p.dead_letter.empty())
        check.error(path + "/dead_letter", "required with then: dead_letter (the id of a loader stage)");
    if (const bj::value *r = o.if_contains("retry")) {
        if (!r->is_object()) {
            check.error(path + "/retry", "expected an object");
        } else {
            const bj::object &ro = r->get_object();
            std::string rp = path + "/retry";
            check.known_keys(ro, rp, {"max_attempts", "backoff_ms", "max_backoff_ms"});
            p.max_attempts = check.positive(ro, rp, "max_attempts", 3, 100);
            p.backoff = std::chrono::milliseconds(check.positive(ro, rp, "backoff_ms", 100, 3600000));
            p.max_backoff = std::chrono::milliseconds(check.positive(ro, rp, "max_backoff_ms", 5000, 3600000));
            if (p.max_backoff < p.backoff) p.max_backoff = p.backoff;
        }
    }
    return p;
}

struct Defaults {
    ErrorPolicy on_error;
    uint32_t threads = 1;
    uint32_t queue_capacity = 8;
    uint32_t batch_size = 1024;
    uint32_t timeout_ms = 0;
    uint32_t retry_environment_ms = 30000;
    Isolation isolation;
};

// "isolation", "memory_limit_mb" and "max_restarts" of a stage or of the
// defaults, over `base`.
Isolation parse_isolation(const bj::object &o, const std::string &path, const Isolation &base, Checker &check) {
    Isolation iso = base;
    if (const bj::value *v = o.if_contains("isolation")) {
        if (v->is_string() && v->get_string() == "process") iso.process = true;
        else if (v->is_string() && v->get_string() == "none") iso.process = false;
        else check.error(path + "/isolation", "expected \"none\" (in the host's process) or \"process\"");
    }
    iso.memory_limit_mb = check.bounded(o, path, "memory_limit_mb", iso.memory_limit_mb, 0, 1024 * 1024);
    iso.max_restarts = check.bounded(o, path, "max_restarts", iso.max_restarts, 0, 1000000);
    return iso;
}

constexpr uint32_t kMaxThreads = 256;
constexpr uint32_t kMaxQueue = 65536;
constexpr uint32_t kMaxBatch = 1000000;

} // namespace

Manifest parse_manifest(const std::string &text, const std::string &path) {
    Manifest m;
    m.path = path;
    {
        // Identifies the text that ran (in the report), not a security hash.
        uint64_t h = 1469598103934665603ull;
        for (unsigned char c : text) h = (h ^ c) * 1099511628211ull;
        char hex[17];
        std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(h));
        m.hash = std::string("fnv1a64:") + hex;
    }
    fs::path parent = fs::path(path).parent_path();
    m.base_dir = parent.empty() ? std::string(".") : parent.string();

    Document doc;
    try {
        doc = parse_document(text, path);
    } catch (const DocumentSyntaxError &e) {
        throw ManifestError({e.what()});
    }
    Checker check(path, doc);
    m.positions = doc.positions;
    bj::value &root = doc.root;
    if (!root.is_object())
        throw ManifestError({path + (is_yaml_path(path) ? ": /: expected a YAML mapping of keys to values"
                                                        : ": /: expected a JSON object")});
    // ${NAME}, ${NAME:-default} and ${file:PATH} anywhere in a string.
    std::vector<std::pair<std::string, std::string>> unresolved;
    const bj::value as_written = root; // a secret must be a reference there
    interpolate_all(root, m.base_dir, "", unresolved);
    for (const auto &[where, what] : unresolved) check.error(where, what);
    const bj::object &top = root.get_object();
    // Keys starting with "x-" are the user's own (YAML anchors, notes),
    // ignored as in Docker Compose files.
    bj::object known_top;
    for (const auto &kv : top)
        if (kv.key().substr(0, 2) != "x-") known_top.emplace(kv.key(), nullptr);
    check.known_keys(known_top, "", {"name", "description", "plugin_dirs", "allow_untrusted_plugins", "state_dir",
                              "checkpoint_interval_ms", "memory_limit_mb", "max_error_rate", "min_quality",
                              "fail_if_nothing_loaded", "admin", "defaults", "stages"});

    m.name = check.string(top, "", "name", false).value_or(fs::path(path).stem().string());

    if (const bj::value *dirs = top.if_contains("plugin_dirs")) {
        if (!dirs->is_array()) {
            check.error("/plugin_dirs", "expected an array of directory paths");
        } else {
            size_t i = 0;
            for (const bj::value &d : dirs->get_array()) {
                if (!d.is_string() || d.get_string().empty())
                    check.error("/plugin_dirs/" + std::to_string(i), "expected a directory path");
                else
                    m.plugin_dirs.push_back(resolve(m.base_dir, std::string(d.get_string())));
                ++i;
            }
        }
    }
    if (const bj::value *d = top.if_contains("state_dir")) {
        if (!d->is_string() || d->get_string().empty()) check.error("/state_dir", "expected a directory path");
        else m.state_dir = resolve(m.base_dir, std::string(d->get_string()));
    }
    if (top.contains("checkpoint_interval_ms"))
        m.checkpoint_interval_ms = check.bounded(top, "", "checkpoint_interval_ms", 0, 0, 3600000);
    m.memory_limit_mb = check.bounded(top, "", "memory_limit_mb", m.memory_limit_mb, 16, 1024 * 1024);
    m.thresholds.max_error_rate = check.fraction(top, "", "max_error_rate");
    m.thresholds.min_quality = check.fraction(top, "", "min_quality");
    if (const bj::value *a = top.if_contains("admin")) {
        if (!a->is_object()) {
            check.error("/admin", "expected an object: {\"port\": 9100} (with \"address\" and \"token_env\" optional)");
        } else {
            const bj::object &ao = a->get_object();
            check.known_keys(ao, "/admin", {"address", "port", "token_env"});
            Manifest::Admin admin;
            admin.address = check.string(ao, "/admin", "address", false).value_or(admin.address);
            if (!ao.contains("port")) check.error("/admin/port", "required key is missing");
            admin.port = int(check.bounded(ao, "/admin", "port", 0, 0, 65535));
            admin.token_env = check.string(ao, "/admin", "token_env", false).value_or("");
            m.admin = admin;
        }
    }
    if (const bj::value *v = top.if_contains("allow_untrusted_plugins")) {
        if (!v->is_bool()) check.error("/allow_untrusted_plugins", "expected true or false");
        else m.allow_untrusted_plugins = v->get_bool();
    }
    if (const bj::value *v = top.if_contains("fail_if_nothing_loaded")) {
        if (!v->is_bool()) check.error("/fail_if_nothing_loaded", "expected true or false");
        else m.thresholds.fail_if_nothing_loaded = v->get_bool();
    }
    if (const bj::value *d = top.if_contains("description"); d && !d->is_string())
        check.error("/description", "expected a string");

    Defaults defaults;
    if (const bj::value *d = top.if_contains("defaults")) {
        if (!d->is_object()) {
            check.error("/defaults", "expected an object");
        } else {
            const bj::object &o = d->get_object();
            check.known_keys(o, "/defaults", {"threads", "queue_capacity", "batch_size", "timeout_ms", "retry_environment_ms",
                                               "on_error", "isolation", "memory_limit_mb", "max_restarts"});
            defaults.isolation = parse_isolation(o, "/defaults", defaults.isolation, check);
            defaults.retry_environment_ms =
                check.positive(o, "/defaults", "retry_environment_ms", defaults.retry_environment_ms, 86400000);
            defaults.timeout_ms = o.contains("timeout_ms") ? check.positive(o, "/defaults", "timeout_ms", 0, 86400000) : 0;
            if (const bj::value *e = o.if_contains("on_error"))
                defaults.on_error = parse_error_policy(*e, "/defaults/on_error", check);
            defaults.threads = check.positive(o, "/defaults", "threads", 1, kMaxThreads);
            defaults.queue_capacity = check.positive(o, "/defaults", "queue_capacity", 8, kMaxQueue);
            defaults.batch_size = check.positive(o, "/defaults", "batch_size", 1024, kMaxBatch);
        }
    }

    const bj::value *stages = top.if_contains("stages");
    if (!stages) {
        check.error("/stages", "required key is missing");
    } else if (!stages->is_array() || stages->get_array().empty()) {
        check.error("/stages", "expected a non-empty array of stages");
    } else {
        std::set<std::string> ids;
        const bj::array &arr = stages->get_array();
        for (size_t i = 0; i < arr.size(); ++i) {
            std::string sp = "/stages/" + std::to_string(i);
            if (!arr[i].is_object()) {
                check.error(sp, "expected a stage object");
                continue;
            }
            const bj::object &so = arr[i].get_object();
            check.known_keys(so, sp,
                             {"id", "kind", "plugin", "library", "sha256", "config", "inputs", "threads", "queue_capacity",
                              "batch_size", "timeout_ms", "retry_environment_ms", "ordered", "on_error", "isolation",
                              "commit_records", "commit_bytes", "commit_interval_ms",
                              "memory_limit_mb", "max_restarts"});
            StageSpec s;
            s.json_path = sp;
            s.on_error = defaults.on_error;
            s.on_error_path = "/defaults/on_error";
            if (const bj::value *e = so.if_contains("on_error")) {
                s.on_error = parse_error_policy(*e, sp + "/on_error", check);
                s.on_error_path = sp + "/on_error";
            }
            if (auto id = check.string(so, sp, "id", true)) {
                if (!valid_stage_id(*id))
                    check.error(sp + "/id", "'" + *id + "' may only contain letters, digits, '_' and '-'");
                else if (!ids.insert(*id).second)
                    check.error(sp + "/id", "duplicate stage id '" + *id + "'");
                s.id = *id;
            }
            if (auto kind = check.string(so, sp, "kind", true)) {
                if (auto k = kind_from_name(*kind)) s.kind = *k;
                else
                    check.error(sp + "/kind", "unknown kind '" + *kind +
                                                  "' (expected extractor, transformer, enricher, "
                                                  "validator or loader)");
            }
            if (auto plugin = check.string(so, sp, "plugin", true)) s.plugin = *plugin;
            if (auto lib = check.string(so, sp, "library", false)) s.library = resolve(m.base_dir, *lib);
            if (auto pin = check.string(so, sp, "sha256", false)) {
                if (!is_sha256_hex(*pin))
                    check.error(sp + "/sha256", "expected the library's SHA-256 as 64 hex digits ('sluice pin' writes it)");
                for (char &c : *pin) c = char(std::tolower(static_cast<unsigned char>(c)));
                s.sha256 = *pin;
            }
            if (const bj::value *c = so.if_contains("config")) {
                if (!c->is_object()) check.error(sp + "/config", "expected an object");
                else s.config = c->get_object();
                const bj::value *raw = as_written.at("stages").at(i).as_object().if_contains("config");
                if (raw && raw->is_object()) s.raw_config = raw->get_object();
            }
            s.threads = check.positive(so, sp, "threads", defaults.threads, kMaxThreads);
            s.queue_capacity = check.positive(so, sp, "queue_capacity", defaults.queue_capacity, kMaxQueue);
            s.batch_size = check.positive(so, sp, "batch_size", defaults.batch_size, kMaxBatch);
            s.timeout_ms = check.positive(so, sp, "timeout_ms", defaults.timeout_ms, 86400000);
            if (!so.contains("timeout_ms")) s.timeout_ms = defaults.timeout_ms;
            s.retry_environment_ms =
                check.positive(so, sp, "retry_environment_ms", defaults.retry_environment_ms, 86400000);
            s.isolation = parse_isolation(so, sp, defaults.isolation, check);
            for (const char *key : {"commit_records", "commit_bytes", "commit_interval_ms"})
                if (so.contains(key) && s.kind != SLUICE_KIND_LOADER)
                    check.error(sp + "/" + key, "commit windows are for loaders (the stage is not one)");
            s.commit_records = check.positive(so, sp, "commit_records", s.commit_records, 1u << 24);
            s.commit_bytes = check.positive(so, sp, "commit_bytes", s.commit_bytes, 1u << 30);
            s.commit_interval_ms = check.bounded(so, sp, "commit_interval_ms", s.commit_interval_ms, 0, 60000);
            if (s.isolation.memory_limit_mb && !s.isolation.process)
                check.error(sp + (so.contains("memory_limit_mb") ? "/memory_limit_mb" : ""),
                            "a memory limit needs \"isolation\": \"process\" (a plugin in the host's process "
                            "cannot be capped)");
            s.ordered = s.kind == SLUICE_KIND_LOADER; // loaders write in extraction order by default
            if (const bj::value *o = so.if_contains("ordered")) {
                if (!o->is_bool()) check.error(sp + "/ordered", "expected true or false");
                else {
                    s.ordered = o->get_bool();
                    s.ordered_explicit = true;
                }
            }
            if (const bj::value *in = so.if_contains("inputs")) {
                if (!in->is_array() || in->get_array().empty()) {
                    check.error(sp + "/inputs", "expected a non-empty array of \"stage\" or \"stage.output\"");
                } else {
                    size_t k = 0;
                    for (const bj::value &ref : in->get_array()) {
                        std::string rp = sp + "/inputs/" + std::to_string(k++);
                        if (!ref.is_string() || ref.get_string().empty()) {
                            check.error(rp, "expected \"stage\" or \"stage.output\"");
                            continue;
                        }
                        std::string text(ref.get_string());
                        InputRef r;
                        size_t dot = text.find('.');
                        r.stage = text.substr(0, dot);
                        if (dot != std::string::npos) r.output = text.substr(dot + 1);
                        r.json_path = rp;
                        s.inputs.push_back(std::move(r));
                    }
                }
            }
            m.stages.push_back(std::move(s));
        }
        if (check.ok())
            for (const std::string &problem : resolve_graph(m)) check.error_line(problem);
    }
    if (!check.ok()) throw ManifestError(check.take());
    return m;
}

Manifest load_manifest(const std::string &path) {
    std::string text;
    try {
        text = read_text_file(path, "manifest");
    } catch (const std::exception &e) {
        throw ManifestError({e.what()});
    }
    return parse_manifest(text, path);
}

} // namespace sluice
