// Pipeline: live reload. The manifest read again is checked in full by
// building a pipeline from it (never run); stages whose config or plugin
// library changed then take the new one in place, between two batches,
// while everything else keeps running.
#include "pipeline.hpp"

#include "kinds.hpp"

#include <spdlog/spdlog.h>

namespace sluice {

namespace bj = boost::json;

bj::object ReloadOutcome::to_json() const {
    auto list = [](const std::vector<std::string> &v) {
        bj::array a;
        for (const auto &s : v) a.emplace_back(s);
        return a;
    };
    return bj::object{{"applied", applied}, {"changes", list(changes)}, {"problems", list(problems)},
                      {"notes", list(notes)}};
}

namespace {

// What of the whole manifest (not its stages) changed; applied at the next
// start only.
std::vector<std::string> top_level_notes(const Manifest &a, const Manifest &b) {
    std::vector<std::string> notes;
    auto note = [&](bool differs, const char *what) {
        if (differs) notes.push_back(std::string(what) + " changed: it takes effect when the pipeline restarts");
    };
    note(a.state_dir != b.state_dir, "state_dir");
    note(a.checkpoint_interval_ms != b.checkpoint_interval_ms, "checkpoint_interval_ms");
    note(a.memory_limit_mb != b.memory_limit_mb, "memory_limit_mb");
    note(a.thresholds.max_error_rate != b.thresholds.max_error_rate ||
             a.thresholds.min_quality != b.thresholds.min_quality ||
             a.thresholds.fail_if_nothing_loaded != b.thresholds.fail_if_nothing_loaded,
         "the run thresholds");
    note(a.admin.has_value() != b.admin.has_value() ||
             (a.admin && (a.admin->address != b.admin->address || a.admin->port != b.admin->port ||
                          a.admin->token_env != b.admin->token_env)),
         "admin");
    note(a.plugin_dirs != b.plugin_dirs, "plugin_dirs");
    return notes;
}

// What changed in a stage that its instances would see.
std::string what_changed(const Stage &running, const Stage &next) {
    const StageSpec &a = running.spec(), &b = next.spec();
    std::vector<std::string> parts;
    if (a.plugin != b.plugin) parts.push_back("plugin '" + a.plugin + "' -> '" + b.plugin + "'");
    const auto &la = running.plugin().library, &lb = next.plugin().library;
    if (la && lb && la->path() != lb->path()) parts.push_back("library " + la->path() + " -> " + lb->path());
    else if (la && lb && !(la->identity() == lb->identity())) {
        const char *va = running.plugin().desc->version, *vb = next.plugin().desc->version;
        parts.push_back(std::string("plugin file replaced (version ") + (va ? va : "?") + " -> " + (vb ? vb : "?") + ")");
    }
    if (a.config != b.config) parts.push_back("config");
    if (a.batch_size != b.batch_size) parts.push_back("batch_size");
    if (a.timeout_ms != b.timeout_ms) parts.push_back("timeout_ms");
    if (a.retry_environment_ms != b.retry_environment_ms) parts.push_back("retry_environment_ms");
    std::string out;
    for (const auto &p : parts) out += (out.empty() ? "" : ", ") + p;
    return out;
}

// Settings that only a restart changes, for a stage whose plugin and
// config did not change.
std::string fixed_difference(const StageSpec &a, const StageSpec &b) {
    auto inputs = [](const StageSpec &s) {
        std::string t;
        for (const InputRef &r : s.inputs) t += r.stage + "." + r.output + ",";
        return t;
    };
    if (a.kind != b.kind) return "its kind";
    if (inputs(a) != inputs(b)) return "its inputs";
    if (a.threads != b.threads) return "threads";
    if (a.queue_capacity != b.queue_capacity) return "queue_capacity";
    if (a.ordered != b.ordered) return "ordered";
    if (a.on_error.then != b.on_error.then || a.on_error.dead_letter != b.on_error.dead_letter ||
        a.on_error.max_attempts != b.on_error.max_attempts || a.on_error.backoff != b.on_error.backoff ||
        a.on_error.max_backoff != b.on_error.max_backoff)
        return "on_error";
    if (a.isolation.process != b.isolation.process || a.isolation.memory_limit_mb != b.isolation.memory_limit_mb ||
        a.isolation.max_restarts != b.isolation.max_restarts)
        return "its isolation";
    return {};
}

} // namespace

ReloadOutcome Pipeline::reload(Manifest next) {
    std::lock_guard serial(reload_mutex_);
    ReloadOutcome out;
    const std::string &file = manifest_.path;
    auto refuse = [&](ReloadOutcome &o) -> ReloadOutcome {
        for (const auto &p : o.problems) spdlog::error("reload refused: {}", p);
        spdlog::warn("reload refused: the pipeline keeps running as it was");
        return o;
    };
    if (phase() != Phase::running) {
        out.problems.push_back(std::string("the pipeline is ") +
                               (phase() == Phase::finished || phase() == Phase::finishing ? "finishing" : "not running yet"));
        return refuse(out);
    }
    // Stages added or removed change the graph: a restart does that.
    std::vector<std::string> before, after;
    for (const StageSpec &s : manifest_.stages) before.push_back(s.id);
    for (const StageSpec &s : next.stages) after.push_back(s.id);
    if (before != after) {
        for (const auto &id : after)
            if (std::find(before.begin(), before.end(), id) == before.end())
                out.problems.push_back(file + ": stage '" + id + "' is new; adding a stage needs a restart");
        for (const auto &id : before)
            if (std::find(after.begin(), after.end(), id) == after.end())
                out.problems.push_back(file + ": stage '" + id + "' is gone; removing a stage needs a restart");
        if (out.problems.empty()) out.problems.push_back(file + ": the stages are in another order; that needs a restart");
        return refuse(out);
    }
    // Everything a start would check, on a pipeline that is built, never run.
    std::unique_ptr<Pipeline> candidate;
    try {
        candidate = std::make_unique<Pipeline>(next);
    } catch (const SetupError &e) {
        out.problems = e.messages();
        return refuse(out);
    }
    out.notes = top_level_notes(manifest_, next);
    std::vector<size_t> changed;
    for (size_t i = 0; i < stages_.size(); ++i) {
        const Stage &running = *stages_[i], &fresh = *candidate->stages_[i];
        const std::string at = file + ": " + fresh.spec().json_path + ": stage '" + fresh.id() + "': ";
        std::string what = what_changed(running, fresh);
        if (what.empty()) {
            if (std::string fixed = fixed_difference(running.spec(), fresh.spec()); !fixed.empty())
                out.problems.push_back(at + fixed + " changed; that needs a restart");
            continue;
        }
        if (std::string refusal = running.replacement_refusal(fresh.spec(), fresh); !refusal.empty()) {
            out.problems.push_back(at + what + " changed, but " + refusal);
            continue;
        }
        changed.push_back(i);
        out.changes.push_back("stage '" + fresh.id() + "': " + what);
    }
    if (!out.problems.empty()) {
        out.changes.clear();
        return refuse(out);
    }
    // What the new configs need, checked before anything is replaced.
    for (size_t i : changed)
        for (const std::string &p : candidate->stages_[i]->preflight())
            out.problems.push_back(file + ": " + candidate->stages_[i]->spec().json_path + "/config: " + p);
    if (!out.problems.empty()) {
        out.changes.clear();
        return refuse(out);
    }
    for (const auto &n : out.notes) spdlog::warn("reload: {}", n);
    if (changed.empty()) {
        out.applied = true;
        spdlog::info("reload: no stage changed");
        return out;
    }
    std::vector<std::string> applied;
    for (size_t k = 0; k < changed.size(); ++k) {
        const size_t i = changed[k];
        const Stage &fresh = *candidate->stages_[i];
        spdlog::info("reload: replacing {}", out.changes[k]);
        if (std::string problem = stages_[i]->replace_with(fresh.spec(), fresh.plugin(), shape_mutex_);
            !problem.empty()) {
            out.problems.push_back("stage '" + fresh.id() + "': " + problem);
            continue;
        }
        std::unique_lock readers_wait(shape_mutex_);
        manifest_.stages[i] = fresh.spec();
        applied.push_back(out.changes[k]);
    }
    {
        std::unique_lock readers_wait(shape_mutex_);
        manifest_.hash = next.hash;
    }
    out.applied = out.problems.empty();
    out.changes = applied;
    for (const auto &c : applied) spdlog::warn("reload: applied: {}", c);
    for (const auto &p : out.problems) spdlog::error("reload: not applied: {}", p);
    return out;
}

} // namespace sluice
