// Pipeline: live reload. The manifest read again is checked in full by
// building a pipeline from it (never run); stages whose config or plugin
// library changed then take the new one in place, between two batches,
// while everything else keeps running.
#include "pipeline.hpp"

#include "graph.hpp"
#include "kinds.hpp"
#include "metrics.hpp"

#include <map>
#include <set>
#include <thread>

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

// "[a, b.pass]": a stage's inputs as the manifest writes them.
std::string inputs_text(const StageSpec &s) {
    std::string t;
    for (const InputRef &r : s.inputs)
        t += (t.empty() ? "" : ", ") + (r.output.empty() ? r.stage : r.stage + "." + r.output);
    return "[" + t + "]";
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
    // Everything a start would check, on a pipeline that is built, never run.
    std::unique_ptr<Pipeline> candidate;
    try {
        candidate = std::make_unique<Pipeline>(next);
    } catch (const SetupError &e) {
        out.problems = e.messages();
        return refuse(out);
    }
    out.notes = top_level_notes(manifest_, next);
    // Stages added or removed, or inputs changed: the graph is rewired.
    bool rewiring = manifest_.stages.size() != next.stages.size();
    for (size_t i = 0; i < next.stages.size() && !rewiring; ++i)
        rewiring = next.stages[i].id != manifest_.stages[i].id ||
                   inputs_text(next.stages[i]) != inputs_text(manifest_.stages[i]);
    if (rewiring) return reload_graph(std::move(next), *candidate, std::move(out));
    std::vector<size_t> changed;
    for (size_t i = 0; i < stages_.size(); ++i) {
        const Stage &running = *stages_[i], &fresh = *candidate->stages_[i];
        const std::string at = file + ": " + fresh.spec().json_path + ": stage '" + fresh.id() + "': ";
        std::string what = what_changed(running, fresh);
        if (what.empty()) {
            if (std::string fixed = restart_only_change(running.spec(), fresh.spec()); !fixed.empty())
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


bool Pipeline::quiesce(std::chrono::milliseconds limit) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    for (auto &s : stages_)
        if (s->kind() == SLUICE_KIND_EXTRACTOR) s->pause_extraction(true);
    // Upstream first: with the extractors held, a batch only moves
    // downstream, so one pass that finds every queue idle in this order
    // (and every extractor held) saw a pipeline with nothing in flight.
    std::vector<size_t> order = topological_order(manifest_);
    for (;;) {
        bool quiet = true;
        for (size_t i : order) {
            const Stage &s = *stages_[i];
            if (s.kind() == SLUICE_KIND_EXTRACTOR) quiet = quiet && s.extraction_paused();
            else if (s.input()) quiet = quiet && s.input()->idle();
            if (!quiet) break;
        }
        if (quiet) return true;
        if (std::chrono::steady_clock::now() > deadline || control_.aborted()) {
            resume_extraction();
            return false;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
}

void Pipeline::resume_extraction() {
    for (auto &s : stages_)
        if (s->kind() == SLUICE_KIND_EXTRACTOR) s->pause_extraction(false);
}

ReloadOutcome Pipeline::reload_graph(Manifest next, Pipeline &candidate, ReloadOutcome out) {
    const std::string &file = manifest_.path;
    auto refuse = [&]() -> ReloadOutcome {
        out.changes.clear();
        for (const auto &p : out.problems) spdlog::error("reload refused: {}", p);
        spdlog::warn("reload refused: the pipeline keeps running as it was");
        return out;
    };
    std::map<std::string, size_t> old_index, new_index;
    for (size_t i = 0; i < manifest_.stages.size(); ++i) old_index[manifest_.stages[i].id] = i;
    for (size_t i = 0; i < next.stages.size(); ++i) new_index[next.stages[i].id] = i;
    const auto old_reach = extractors_reaching(manifest_), new_reach = extractors_reaching(next);
    auto reach_ids = [](const Manifest &m, const std::vector<size_t> &reach) {
        std::set<std::string> ids;
        for (size_t e : reach) ids.insert(m.stages[e].id);
        return ids;
    };

    // What changes, and whether a running pipeline can take it.
    std::vector<size_t> added, removed;       // indices in next / in manifest_
    std::vector<size_t> replaced;             // kept stages with a new config or plugin (indices in next)
    for (size_t i = 0; i < next.stages.size(); ++i) {
        const StageSpec &spec = next.stages[i];
        const std::string at = file + ": " + spec.json_path + ": stage '" + spec.id + "': ";
        auto it = old_index.find(spec.id);
        if (it == old_index.end()) {
            if (spec.kind == SLUICE_KIND_EXTRACTOR) out.problems.push_back(at + "adding an extractor needs a restart");
            added.push_back(i);
            out.changes.push_back("stage '" + spec.id + "': added");
            continue;
        }
        Stage &running = *stages_[it->second];
        const Stage &fresh = *candidate.stages_[i];
        if (reach_ids(manifest_, old_reach[it->second]) != reach_ids(next, new_reach[i]))
            out.problems.push_back(at + "the extractors whose records reach it changed; that needs a restart");
        std::string what = what_changed(running, fresh);
        if (what.empty()) {
            if (std::string fixed = restart_only_change(running.spec(), fresh.spec()); !fixed.empty())
                out.problems.push_back(at + fixed + " changed; that needs a restart");
        } else if (std::string refusal = running.replacement_refusal(fresh.spec(), fresh); !refusal.empty()) {
            out.problems.push_back(at + what + " changed, but " + refusal);
        } else {
            replaced.push_back(i);
            out.changes.push_back("stage '" + spec.id + "': " + what);
        }
        if (inputs_text(running.spec()) != inputs_text(spec))
            out.changes.push_back("stage '" + spec.id + "': inputs now " + inputs_text(spec));
    }
    for (size_t i = 0; i < manifest_.stages.size(); ++i) {
        const StageSpec &spec = manifest_.stages[i];
        if (new_index.count(spec.id)) continue;
        if (spec.kind == SLUICE_KIND_EXTRACTOR)
            out.problems.push_back(file + ": stage '" + spec.id + "' is gone; removing an extractor needs a restart");
        removed.push_back(i);
        out.changes.push_back("stage '" + spec.id + "': removed");
    }
    if (!exactly_once_.empty())
        out.problems.push_back(file + ": loader '" + stages_[exactly_once_[0].sink]->id() +
                               "' delivers exactly once; changing the graph around it needs a restart");
    if (!out.problems.empty()) return refuse();
    for (size_t i : added)
        for (const std::string &p : candidate.stages_[i]->preflight())
            out.problems.push_back(file + ": " + next.stages[i].json_path + "/config: " + p);
    for (size_t i : replaced)
        for (const std::string &p : candidate.stages_[i]->preflight())
            out.problems.push_back(file + ": " + next.stages[i].json_path + "/config: " + p);
    if (!out.problems.empty()) return refuse();

    // The new stages, made and started before anything changes.
    std::map<std::string, std::unique_ptr<Stage>> fresh_stages;
    for (size_t i : added) {
        const Stage &c = *candidate.stages_[i];
        auto stage = std::make_unique<Stage>(c.spec(), c.plugin(), control_, manifest_.base_dir);
        std::string problem = stage->create_instances();
        if (problem.empty()) problem = stage->resolve_config_outputs();
        if (problem.empty()) problem = stage->start_instances();
        if (!problem.empty()) {
            out.problems.push_back(file + ": " + c.spec().json_path + ": stage '" + c.id() + "' did not start: " + problem);
            for (auto &[id, st] : fresh_stages) st->stop_and_destroy();
            stage->stop_and_destroy();
            return refuse();
        }
        fresh_stages[c.id()] = std::move(stage);
    }

    // Nothing in flight from here on.
    constexpr auto kDrainLimit = std::chrono::seconds(30);
    if (!quiesce(kDrainLimit)) {
        for (auto &[id, st] : fresh_stages) st->stop_and_destroy();
        out.problems.push_back("what was in flight did not drain within 30 s (a stage is stuck or the run is "
                               "stopping); nothing was changed");
        return refuse();
    }
    spdlog::info("reload: extraction paused and nothing in flight; rewiring");

    for (size_t i : replaced) {
        const Stage &fresh = *candidate.stages_[i];
        Stage &running = *stages_[old_index.at(fresh.id())];
        if (std::string problem = running.replace_with(fresh.spec(), fresh.plugin(), shape_mutex_); !problem.empty())
            out.problems.push_back("stage '" + fresh.id() + "': " + problem);
    }

    // A stage by id, old or new.
    auto stage_named = [&](const std::string &id) -> Stage * {
        if (auto f = fresh_stages.find(id); f != fresh_stages.end()) return f->second.get();
        if (auto o = old_index.find(id); o != old_index.end()) return stages_[o->second].get();
        return nullptr;
    };
    auto output_of = [&](const InputRef &r) -> uint32_t {
        if (r.output.empty()) return 0;
        const auto &names = stage_named(r.stage)->plugin().output_names;
        return uint32_t(std::find(names.begin(), names.end(), r.output) - names.begin());
    };
    auto connection = [](const InputRef &r) { return r.stage + "." + r.output; };

    // Queues of the new stages (their inputs, and the stages dead-lettering to them).
    std::vector<std::shared_ptr<BatchQueue>> new_queues;
    std::vector<std::shared_ptr<SequenceWindow>> new_windows;
    for (size_t i : added) {
        const StageSpec &spec = next.stages[i];
        if (spec.kind == SLUICE_KIND_EXTRACTOR) continue;
        size_t senders = 0;
        for (const StageSpec &other : next.stages)
            if (other.on_error.then == ErrorPolicy::Then::dead_letter && other.on_error.dead_letter == spec.id) ++senders;
        if (spec.inputs.empty() && senders == 0) continue;
        auto q = std::make_shared<BatchQueue>(spec.queue_capacity, spec.ordered, spec.inputs.size() + senders);
        if (spec.ordered && new_reach[i].size() == 1) {
            // Released in the order its extractor numbers batches, from the
            // number it is at (nothing before it will come).
            Stage &source = *stage_named(next.stages[new_reach[i][0]].id);
            std::shared_ptr<SequenceWindow> window = source.sequence_window();
            size_t lane = 0;
            if (!window) {
                uint64_t size = 0;
                for (size_t k = 0; k < next.stages.size(); ++k)
                    if (std::find(new_reach[k].begin(), new_reach[k].end(), new_reach[i][0]) != new_reach[k].end())
                        size += next.stages[k].queue_capacity + next.stages[k].threads;
                window = std::make_shared<SequenceWindow>(size, 1, source.next_sequence());
                source.set_sequence_window(window);
                new_windows.push_back(window);
            } else {
                lane = window->add_lane();
            }
            q->start_at(window->next());
            q->set_window(window, lane);
        }
        fresh_stages.at(spec.id)->set_input(q);
        new_queues.push_back(q);
    }
    // New connections first (a queue must never see its last producer go
    // while another is about to come), then dead letters of new stages.
    for (size_t i = 0; i < next.stages.size(); ++i) {
        const StageSpec &spec = next.stages[i];
        Stage *to = stage_named(spec.id);
        auto before = old_index.find(spec.id);
        std::set<std::string> had;
        if (before != old_index.end())
            for (const InputRef &r : manifest_.stages[before->second].inputs) had.insert(connection(r));
        for (const InputRef &r : spec.inputs) {
            if (had.count(connection(r))) continue;
            if (before != old_index.end()) to->input()->add_producer();
            stage_named(r.stage)->connect(output_of(r), to->input());
        }
        if (fresh_stages.count(spec.id) && spec.on_error.then == ErrorPolicy::Then::dead_letter) {
            Stage *letters = stage_named(spec.on_error.dead_letter);
            if (!fresh_stages.count(spec.on_error.dead_letter)) letters->input()->add_producer();
            to->set_dead_letter(letters->input());
        }
    }
    // Connections gone between stages that stay.
    for (size_t i = 0; i < manifest_.stages.size(); ++i) {
        const StageSpec &spec = manifest_.stages[i];
        auto after = new_index.find(spec.id);
        if (after == new_index.end()) continue;
        std::set<std::string> keeps;
        for (const InputRef &r : next.stages[after->second].inputs) keeps.insert(connection(r));
        for (const InputRef &r : spec.inputs) {
            if (keeps.count(connection(r)) || !new_index.count(r.stage)) continue;
            stages_[r.from]->disconnect(output_index(r), stages_[i]->input());
            stages_[i]->input()->producer_done();
        }
    }
    // Removed stages: cut from the stages that stay, then they drain what
    // they hold (their flush goes on downstream), finish and stop.
    for (size_t i : removed) {
        Stage &gone = *stages_[i];
        for (const InputRef &r : manifest_.stages[i].inputs) {
            if (!new_index.count(r.stage)) continue; // a removed stage closes its own outputs
            stages_[r.from]->disconnect(output_index(r), gone.input());
            gone.input()->producer_done();
        }
        gone.input()->leave_window();
    }
    for (size_t i : removed) {
        Stage &gone = *stages_[i];
        const auto deadline = std::chrono::steady_clock::now() + kDrainLimit;
        while (gone.workers_running() > 0 && std::chrono::steady_clock::now() < deadline && !control_.aborted())
            std::this_thread::sleep_for(std::chrono::milliseconds(2));
        if (gone.workers_running() > 0) {
            out.problems.push_back("stage '" + gone.id() + "' did not finish within 30 s after it was removed");
            continue;
        }
        StageTotals t = gone.metrics().totals();
        spdlog::warn("reload: stage '{}' removed after {} records in, {} out, {} rejected, {} errors", gone.id(), t.in,
                     t.out, t.rejected, t.errors);
        gone.stop_and_destroy();
    }
    // The new stages run; the pipeline takes the new shape.
    for (size_t i : added) fresh_stages.at(next.stages[i].id)->launch();
    {
        std::unique_lock readers_wait(shape_mutex_);
        std::vector<std::unique_ptr<Stage>> reordered;
        for (const StageSpec &spec : next.stages) {
            if (auto f = fresh_stages.find(spec.id); f != fresh_stages.end()) {
                reordered.push_back(std::move(f->second));
            } else {
                std::unique_ptr<Stage> &kept = stages_[old_index.at(spec.id)];
                kept->set_inputs(spec.inputs);
                reordered.push_back(std::move(kept));
            }
        }
        for (auto &s : stages_)
            if (s) retired_.push_back(std::move(s));
        stages_ = std::move(reordered);
        for (auto &q : new_queues) queues_.push_back(q);
        for (auto &w : new_windows) windows_.push_back(w);
        manifest_ = std::move(next);
    }
    resume_extraction();
    out.applied = out.problems.empty();
    for (const auto &c : out.changes) spdlog::warn("reload: applied: {}", c);
    for (const auto &p : out.problems) spdlog::error("reload: not applied: {}", p);
    return out;
}

} // namespace sluice
