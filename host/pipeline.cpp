#include "pipeline.hpp"

#include "config_schema.hpp"
#include "crash_reporter.hpp"
#include "graph.hpp"
#include "kinds.hpp"
#include "listening_sockets.hpp"
#include "memory_budget.hpp"
#include "resource_conflicts.hpp"
#include "report.hpp"
#include "secret_redactor.hpp"
#include "signal_watcher.hpp"

#include <sluice/json_schema.hpp>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <sstream>
#include <unistd.h>

namespace bj = boost::json;

namespace sluice {

SetupError::SetupError(std::vector<std::string> messages)
    : std::runtime_error(messages.empty() ? std::string("pipeline setup failed") : messages.front()),
      messages_(std::move(messages)) {}

void Pipeline::warn_if_root_listening() const {
    if (::geteuid() != 0) return;
    std::vector<std::string> listening = listening_addresses();
    if (listening.empty()) return;
    std::string where;
    for (const std::string &a : listening) where += (where.empty() ? "" : ", ") + a;
    spdlog::warn("sluice runs as root and listens on {}: a flaw in a plugin or in sluice reachable from there would "
                 "run as root; run it as a user of its own (the packaged sluice@.service runs as 'sluice')",
                 where);
}

Pipeline::Pipeline(Manifest manifest) : manifest_(std::move(manifest)) {
    std::vector<std::string> errors;
    const std::string &file = manifest_.path;
    PluginRegistry registry(plugin_search_dirs(manifest_.plugin_dirs), manifest_.allow_untrusted_plugins);
    std::vector<LoadedStage> plugins;
    for (StageSpec &spec : manifest_.stages) {
        spec.allow_untrusted_plugin = manifest_.allow_untrusted_plugins;
        try {
            plugins.push_back(registry.find(spec.kind, spec.plugin, spec.library, spec.sha256));
        } catch (const PinMismatch &e) {
            errors.push_back(file + ": " + spec.json_path + "/sha256: " + e.what());
            plugins.emplace_back();
            continue;
        } catch (const PluginError &e) {
            errors.push_back(file + ": " + spec.json_path + (spec.library ? "/library: " : "/plugin: ") + e.what());
            plugins.emplace_back();
            continue;
        }
        const LoadedStage &p = plugins.back();
        if ((p.desc->capabilities & SLUICE_CAP_SINGLE_WORKER) && spec.threads > 1)
            errors.push_back(file + ": " + spec.json_path + "/threads: " + std::string(kind_name(spec.kind)) + " '" +
                             spec.plugin + "' runs on a single worker; remove threads or set it to 1");
        if (!p.schema.is_null()) {
            auto problems = check_against_schema(spec.config, p.schema, spec.json_path + "/config");
            std::vector<std::string> secrets;
            for (auto &m : check_secret_fields(p.schema, spec.raw_config, spec.config, spec.json_path + "/config", secrets))
                problems.push_back(std::move(m));
            // Known before any plugin sees its config: nothing written about
            // the run from here on shows them.
            for (std::string &s : secrets) SecretRedactor::global().add(std::move(s));
            for (const std::string &m : problems) errors.push_back(file + ": " + m);
            if (problems.empty() && p.fills_config_defaults()) {
                boost::json::value config(std::move(spec.config));
                json::apply_defaults(config, p.schema);
                spec.config = std::move(config.get_object());
            }
        }
    }
    if (!errors.empty()) throw SetupError(placed(std::move(errors)));

    for (size_t i = 0; i < manifest_.stages.size(); ++i)
        stages_.push_back(std::make_unique<Stage>(manifest_.stages[i], plugins[i], control_, manifest_.base_dir));
    if (!manifest_.state_dir.empty()) {
        // A stage that crashed the last run (in process) runs isolated now:
        // the record that crashed it is found and set aside instead of
        // crashing every run from the same saved position.
        crash_marker_path_ = crash_reporter::marker_path(manifest_.state_dir);
        if (auto marker = crash_reporter::read_marker(crash_marker_path_)) {
            for (auto &stage : stages_) {
                if (stage->id() != marker->stage || stage->spec().isolation.process) continue;
                stage->isolate_until_past(marker->extractor, marker->worker, marker->pull);
                recovering_from_crash_ = true;
                spdlog::warn("the last run crashed in stage '{}' (plugin {}, {}){}: this run runs it isolated in "
                             "worker processes until it is past that batch, so a record that crashes it is found "
                             "and takes the error path",
                             marker->stage, marker->plugin, marker->signal,
                             marker->extractor.empty() ? std::string()
                                                       : " on pull " + std::to_string(marker->pull) + " of '" +
                                                             marker->extractor + "'");
            }
        }
    }
    for (auto &stage : stages_) {
        std::string problem = stage->create_instances();
        if (problem.empty()) problem = stage->resolve_config_outputs();
        if (!problem.empty()) errors.push_back(file + ": " + stage->spec().json_path + "/config: " + problem);
    }
    if (errors.empty()) {
        // Inputs naming an output: the plugin (or, for a router, its config)
        // must have it.
        for (const StageSpec &spec : manifest_.stages) {
            for (const InputRef &r : spec.inputs) {
                const auto &names = stages_[r.from]->plugin().output_names;
                if (r.output.empty() || std::find(names.begin(), names.end(), r.output) != names.end()) continue;
                std::string list;
                for (const auto &n : names) list += (list.empty() ? "" : ", ") + n;
                errors.push_back(file + ": " + r.json_path + ": stage '" + r.stage + "' has no output '" + r.output +
                                 "' (" + std::string(kind_name(manifest_.stages[r.from].kind)) + " '" +
                                 manifest_.stages[r.from].plugin + "' has: " + list + ")");
            }
        }
    }
    if (errors.empty()) {
        // A loader must not write what an extractor reads.
        std::vector<StageResources> declared;
        for (size_t i = 0; i < stages_.size(); ++i) {
            std::string json = stages_[i]->declared_resources();
            if (json.empty()) continue;
            std::string problem;
            if (auto r = parse_resources(i, json, problem)) declared.push_back(std::move(*r));
            else errors.push_back(file + ": " + manifest_.stages[i].json_path + "/plugin: " + problem);
        }
        for (std::string &m : write_read_conflicts(manifest_, declared)) errors.push_back(std::move(m));
    }
    if (!errors.empty()) {
        stages_.clear();
        throw SetupError(placed(std::move(errors)));
    }

    // One queue in front of each stage that has inputs; every (stage,
    // output) it reads pushes into it and counts as one of its producers.
    // A dead-letter stage also counts each stage that sends it dead letters.
    std::vector<size_t> senders(stages_.size(), 0);
    for (const auto &st : stages_)
        if (st->spec().on_error.then == ErrorPolicy::Then::dead_letter) ++senders[st->spec().on_error.dead_letter_index];
    for (size_t i = 0; i < stages_.size(); ++i) {
        const StageSpec &s = stages_[i]->spec();
        if (s.inputs.empty() && senders[i] == 0) continue;
        auto q = std::make_shared<BatchQueue>(s.queue_capacity, s.ordered, s.inputs.size() + senders[i]);
        stages_[i]->set_input(q);
        for (const InputRef &r : s.inputs) stages_[r.from]->connect(output_index(r), q);
        queues_.push_back(q);
    }
    for (const auto &st : stages_)
        if (st->spec().on_error.then == ErrorPolicy::Then::dead_letter)
            st->set_dead_letter(stages_[st->spec().on_error.dead_letter_index]->input());
    // Ordered stages release batches in extraction order; a window per
    // extractor keeps it from running further ahead of the slowest of them
    // than the queues and workers in between can hold.
    auto reach = extractors_reaching(manifest_);
    for (size_t e = 0; e < stages_.size(); ++e) {
        if (stages_[e]->kind() != SLUICE_KIND_EXTRACTOR) continue;
        std::vector<size_t> ordered;
        uint64_t size = 0;
        for (size_t i = 0; i < stages_.size(); ++i) {
            if (i == e || std::find(reach[i].begin(), reach[i].end(), e) == reach[i].end()) continue;
            size += stages_[i]->spec().queue_capacity + stages_[i]->spec().threads;
            if (stages_[i]->spec().ordered) ordered.push_back(i);
        }
        if (ordered.empty()) continue;
        auto window = std::make_shared<SequenceWindow>(size, ordered.size());
        for (size_t lane = 0; lane < ordered.size(); ++lane) stages_[ordered[lane]]->input()->set_window(window, lane);
        stages_[e]->set_sequence_window(window);
        windows_.push_back(window);
    }
    warn_about_memory();
}

void Pipeline::warn_about_memory() const {
    // A rough worst case, counted in batches: what the queues, the workers
    // and the reorder windows may hold, at a typical record size. The budget
    // holds whatever the settings; this says when it, not they, will.
    constexpr uint64_t kTypicalRecordBytes = 256;
    const uint64_t budget = uint64_t(manifest_.memory_limit_mb) << 20;
    auto reach = extractors_reaching(manifest_);
    for (size_t e = 0; e < stages_.size(); ++e) {
        const StageSpec &source = stages_[e]->spec();
        if (source.kind != SLUICE_KIND_EXTRACTOR) continue;
        uint64_t batches = source.threads;
        for (size_t i = 0; i < stages_.size(); ++i)
            if (std::find(reach[i].begin(), reach[i].end(), e) != reach[i].end())
                batches += stages_[i]->spec().queue_capacity + stages_[i]->spec().threads;
        const uint64_t worst = batches * source.batch_size * kTypicalRecordBytes;
        if (worst <= budget) continue;
        const uint64_t fits = std::max<uint64_t>(1, std::max<uint64_t>(budget / 16, 64 * 1024) / kTypicalRecordBytes);
        spdlog::warn("{}: {}/batch_size: up to {} batches of {} records may be in flight from extractor '{}' "
                     "(queues, threads, reorder windows): about {} MB at {} bytes a record, more than "
                     "memory_limit_mb ({}); extraction will pause at the budget and pulls are cut to about {} "
                     "records (lower batch_size, queue_capacity or threads, or raise memory_limit_mb)",
                     manifest_.path, source.json_path, batches, source.batch_size, source.id, worst >> 20,
                     kTypicalRecordBytes, manifest_.memory_limit_mb, std::min<uint64_t>(fits, source.batch_size));
    }
}

uint32_t Pipeline::output_index(const InputRef &r) const {
    if (r.output.empty()) return 0;
    const auto &names = stages_[r.from]->plugin().output_names;
    return uint32_t(std::find(names.begin(), names.end(), r.output) - names.begin());
}

Pipeline::~Pipeline() {
    // Instances go before their libraries (held by the stages' LoadedStage).
    stages_.clear();
}

std::string Pipeline::describe() const {
    std::ostringstream out;
    out << "pipeline '" << manifest_.name << "' (" << stages_.size() << " stages)\n";
    auto readers = readers_of(manifest_);
    for (size_t i = 0; i < stages_.size(); ++i) {
        const Stage &s = *stages_[i];
        const StageSpec &spec = s.spec();
        out << "  " << spec.id << "  [" << kind_name(spec.kind) << " " << spec.plugin << " "
            << s.plugin().desc->version << "]  threads=" << spec.threads << " batch=" << spec.batch_size;
        if (!spec.inputs.empty()) out << " queue=" << spec.queue_capacity << (spec.ordered ? " ordered" : "");
        if (spec.isolation.process) {
            out << " isolated max_restarts=" << spec.isolation.max_restarts;
            if (spec.isolation.memory_limit_mb) out << " memory_limit=" << spec.isolation.memory_limit_mb << "MB";
        }
        out << "\n";
        // Where each output goes.
        const auto &names = s.plugin().output_names;
        for (uint32_t o = 0; o < names.size(); ++o) {
            std::string to;
            for (const Reader &r : readers[i])
                if (output_index(manifest_.stages[r.stage].inputs[r.input]) == o)
                    to += (to.empty() ? "" : ", ") + manifest_.stages[r.stage].id;
            if (spec.kind == SLUICE_KIND_LOADER && to.empty()) continue;
            out << "      " << (names.size() > 1 ? names[o] + " " : std::string()) << "-> "
                << (to.empty() ? std::string(o == uint32_t(s.fail_output()) ? "(counted as rejected)" : "(dropped)")
                               : to)
                << "\n";
        }
        // Which file runs, and its hash (what 'sluice pin' writes).
        if (const auto &lib = s.plugin().library; lib && !lib->is_built_in())
            out << "      library " << lib->path() << " sha256 " << lib->sha256()
                << (spec.sha256.empty() ? "" : " (pinned)") << "\n";
    }
    return out.str();
}

std::string Pipeline::dot() const {
    auto quote = [](const std::string &s) {
        std::string q = "\"";
        for (char c : s) {
            if (c == '"') q += '\\'; // ids and plugin names hold no backslash
            q += c;
        }
        return q + "\"";
    };
    std::ostringstream out;
    out << "digraph " << quote(manifest_.name) << " {\n  rankdir=LR;\n  node [shape=box, style=rounded];\n";
    for (const auto &sp : stages_) {
        const StageSpec &spec = sp->spec();
        const char *shape = spec.kind == SLUICE_KIND_EXTRACTOR ? "invhouse"
                            : spec.kind == SLUICE_KIND_LOADER  ? "house"
                            : spec.kind == SLUICE_KIND_VALIDATOR ? "diamond"
                                                                 : "box";
        out << "  " << quote(spec.id) << " [shape=" << shape << ", label="
            << quote(spec.id + "\\n" + std::string(kind_name(spec.kind)) + " " + spec.plugin) << "];\n";
    }
    for (const auto &sp : stages_) {
        for (const InputRef &r : sp->spec().inputs) {
            out << "  " << quote(r.stage) << " -> " << quote(sp->id());
            if (!r.output.empty()) out << " [label=" << quote(r.output) << "]";
            out << ";\n";
        }
    }
    out << "}\n";
    return out.str();
}

std::string Pipeline::open_state(RunResult &result) {
    if (manifest_.state_dir.empty()) {
        // No state to keep, but sources that confirm delivery to their
        // clients still hear of it.
        for (auto &st : stages_)
            if (st->kind() == SLUICE_KIND_EXTRACTOR && st->wants_acknowledgements())
                if (std::string problem = st->restore_and_track({}); !problem.empty())
                    return "stage '" + st->id() + "': " + problem;
        return {};
    }
    try {
        state_ = std::make_unique<StateStore>(manifest_.state_dir, manifest_.name);
    } catch (const StateError &e) {
        return e.what();
    }
    uint64_t replayed = 0;
    bool resumed = false;
    bj::array resumable;
    for (auto &st : stages_) {
        if (st->kind() != SLUICE_KIND_EXTRACTOR) continue;
        const StageSpec &spec = st->spec();
        auto saved = state_->saved(spec.id);
        if (!st->can_resume()) {
            spdlog::warn("[{}] extractor '{}' cannot resume (no " SLUICE_EXT_CHECKPOINT
                         " or one instance shared by its workers): it reads from its start on every run",
                         spec.id, spec.plugin);
            continue;
        }
        std::vector<std::string> positions;
        if (saved) {
            if (saved->plugin != spec.plugin)
                return state_->path() + ": stage '" + spec.id + "' was saved by extractor '" + saved->plugin +
                       "' but the manifest now runs '" + spec.plugin + "'; move the state file away to start afresh";
            if (saved->positions.size() != st->instance_count())
                return state_->path() + ": stage '" + spec.id + "' was saved with " +
                       std::to_string(saved->positions.size()) + " workers but now has " +
                       std::to_string(st->instance_count()) + "; set its threads back to " +
                       std::to_string(saved->positions.size()) + " or move the state file away";
            positions = saved->positions;
            replayed += saved->unacknowledged;
            resumed = true;
        }
        std::string problem = st->restore_and_track(positions, saved ? saved->pulls : std::vector<uint64_t>{});
        if (!problem.empty()) return state_->path() + ": stage '" + spec.id + "': " + problem;
        state_->track(spec.id, spec.plugin, spec.batch_size, st->trackers());
        resumable.push_back(bj::value(spec.id));
    }
    result.delivery = bj::object{{"state_file", state_->path()},
                                 {"resumed", resumed},
                                 {"replayed", replayed},
                                 {"resumable_extractors", std::move(resumable)}};
    if (resumed)
        spdlog::info("resuming from {}: {} records read but not acknowledged last time are read again",
                     state_->path(), replayed);
    plan_exactly_once(result);
    return {};
}

void Pipeline::plan_exactly_once(RunResult &result) {
    auto reach = extractors_reaching(manifest_);
    std::vector<bool> receives_dead_letters(stages_.size(), false);
    for (const auto &st : stages_)
        if (st->spec().on_error.then == ErrorPolicy::Then::dead_letter)
            receives_dead_letters[st->spec().on_error.dead_letter_index] = true;
    bj::array once, at_least_once;
    for (size_t i = 0; i < stages_.size(); ++i) {
        const Stage &sink = *stages_[i];
        const StageSpec &spec = sink.spec();
        if (spec.kind != SLUICE_KIND_LOADER) continue;
        // Why this loader cannot deliver exactly once, if it cannot.
        std::string why;
        if (!sink.can_deliver_exactly_once()) why = "its plugin cannot store a marker with its records";
        else if (reach[i].size() != 1) why = "records reach it from several extractors";
        else if (!stages_[reach[i][0]]->can_resume()) why = "its extractor cannot resume";
        else if (spec.threads != 1 || !spec.ordered) why = "it needs one thread and ordered delivery";
        else if (receives_dead_letters[i]) why = "it receives dead letters";
        else if (spec.on_error.then != ErrorPolicy::Then::skip || spec.on_error.max_attempts > 1)
            why = "records it fails are retried, dead-lettered or fail the run (on_error)";
        if (!why.empty()) {
            if (sink.can_deliver_exactly_once())
                spdlog::info("[{}] delivers at least once: {}", spec.id, why);
            at_least_once.push_back(bj::value(spec.id));
            continue;
        }
        const Stage &source = *stages_[reach[i][0]];
        auto saved = state_->saved(source.id());
        std::vector<uint64_t> delivered(source.instance_count(), 0);
        bool replay_matches = true;
        if (saved) {
            delivered = saved->pulls;
            delivered.resize(source.instance_count(), 0);
            replay_matches = saved->batch_size == 0 || saved->batch_size == source.spec().batch_size;
        }
        exactly_once_.push_back(ExactlyOnce{i, reach[i][0], std::move(delivered), replay_matches});
        once.push_back(bj::value(spec.id));
    }
    result.delivery["exactly_once"] = std::move(once);
    result.delivery["at_least_once"] = std::move(at_least_once);
}

std::string Pipeline::recover_exactly_once() {
    if (state_ && !exactly_once_.empty())
        state_->before_save([this] {
            bool ok = true;
            for (const ExactlyOnce &e : exactly_once_) ok = stages_[e.sink]->sync_markers() && ok;
            return ok;
        });
    for (const ExactlyOnce &e : exactly_once_) {
        Stage &sink = *stages_[e.sink];
        sink.sync_markers_each_batch(stages_[e.extractor]->wants_acknowledgements());
        std::string problem = sink.recover_exactly_once(stages_[e.extractor]->id(), e.delivered, e.replay_matches);
        if (!problem.empty())
            return "stage '" + sink.id() + "' (loader " + sink.spec().plugin + "): " + problem;
    }
    return {};
}

void Pipeline::warn_about_late_confirmations() const {
    auto reach = extractors_reaching(manifest_);
    for (size_t i = 0; i < stages_.size(); ++i) {
        const Stage &loader = *stages_[i];
        if (loader.kind() != SLUICE_KIND_LOADER || loader.durable_on_process()) continue;
        for (size_t e : reach[i]) {
            if (!stages_[e]->wants_acknowledgements()) continue;
            spdlog::warn("[{}] confirms delivery to its clients, but loader '{}' ({}) makes records durable only "
                         "when the run ends: every confirmation waits until then (look in its options for a mode "
                         "that makes each batch durable as it is written, such as appending)",
                         stages_[e]->id(), loader.id(), loader.spec().plugin);
        }
    }
}

const char *phase_name(Pipeline::Phase p) {
    switch (p) {
    case Pipeline::Phase::created: return "created";
    case Pipeline::Phase::starting: return "starting";
    case Pipeline::Phase::running: return "running";
    case Pipeline::Phase::finishing: return "finishing";
    case Pipeline::Phase::finished: return "finished";
    }
    return "?";
}

void Pipeline::publish_final_report(const RunResult &result) {
    {
        std::lock_guard lock(report_mutex_);
        final_report_ = result.report;
    }
    phase_ = Phase::finished;
}

bj::object Pipeline::live_report() const {
    auto reading = read_lock(); // not while a reload swaps a stage's plugin
    RunResult now;
    const Phase p = phase();
    {
        std::lock_guard lock(report_mutex_);
        if (p == Phase::finished && final_report_) return *final_report_;
        now.delivery = delivery_plan_;
    }
    now.status = phase_name(p);
    if (p == Phase::created) return build_report(*this, now, std::chrono::system_clock::now(), 0.0);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
    return build_report(*this, now, started_wall_, seconds);
}

std::set<std::string> Pipeline::dead_letter_stages() const {
    std::set<std::string> ids;
    for (const auto &s : stages_)
        if (s->spec().on_error.then == ErrorPolicy::Then::dead_letter) ids.insert(s->spec().on_error.dead_letter);
    return ids;
}

std::vector<std::string> Pipeline::placed(std::vector<std::string> messages) const {
    for (std::string &m : messages) m = manifest_.positions.place(m, manifest_.path);
    return messages;
}

std::vector<std::string> Pipeline::preflight() const {
    std::vector<std::string> out;
    for (const auto &s : stages_) {
        for (const std::string &problem : s->preflight()) {
            // "path: matches no file" -> ".../config/path: matches no file"
            const size_t colon = problem.find(": ");
            std::string field = colon == std::string::npos ? "" : problem.substr(0, colon);
            const bool is_field = !field.empty() && field.find(' ') == std::string::npos;
            std::string where = s->spec().json_path + "/config" + (is_field ? "/" + field : "");
            out.push_back(manifest_.positions.place(
                manifest_.path + ": " + where + ": " + (is_field ? problem.substr(colon + 2) : problem), manifest_.path));
        }
    }
    return out;
}

std::vector<std::string> Pipeline::not_ready() const {
    std::vector<std::string> why;
    const Phase p = phase();
    if (p != Phase::running) why.push_back(std::string("the pipeline is ") + phase_name(p));
    for (const auto &s : stages_) {
        if (s->abandoned_calls() > 0)
            why.push_back("stage '" + s->id() + "' has " + std::to_string(s->abandoned_calls()) +
                          " plugin calls stuck past timeout_ms");
        if (s->restarting_in_a_loop())
            why.push_back("stage '" + s->id() + "' restarted its workers max_restarts (" +
                          std::to_string(s->spec().isolation.max_restarts) + ") times in the last minute");
    }
    return why;
}

RunResult Pipeline::run(const RunOptions &options) {
    RunResult result;
    // Set before the phase says so: the admin thread reads them after it.
    auto started_wall = started_wall_ = std::chrono::system_clock::now();
    auto started = started_ = std::chrono::steady_clock::now();
    phase_ = Phase::starting;

    // A run that cannot start reads nothing and says why.
    auto fail_before_running = [&](std::string error) {
        phase_ = Phase::finishing;
        result.error = std::move(error);
        spdlog::error("{}", result.error);
        for (auto &s : stages_) s->stop_and_destroy();
        result.status = "failed";
        result.exit_code = 1;
        result.report = build_report(*this, result, started_wall, 0);
        publish_final_report(result);
        return result;
    };
    MemoryBudget &budget = MemoryBudget::global();
    budget.set_limit(uint64_t(manifest_.memory_limit_mb) << 20);
    budget.reset_peak();
    if (std::string problem = open_state(result); !problem.empty()) return fail_before_running(problem);
    warn_about_late_confirmations();
    crash_reporter::install();
    crash_reporter::set_marker_path(crash_marker_path_);

    // Start loaders first: a destination that cannot open fails the run
    // before anything is read.
    for (auto it = stages_.rbegin(); it != stages_.rend(); ++it) {
        std::string problem = (*it)->start_instances();
        if (!problem.empty())
            return fail_before_running("stage '" + (*it)->id() + "' (" + std::string(kind_name((*it)->kind())) + " " +
                                       (*it)->spec().plugin + ") failed to start: " + problem);
    }

    if (std::string problem = recover_exactly_once(); !problem.empty()) return fail_before_running(problem);

    control_.on_abort([this] {
        auto reading = read_lock(); // a reload may be adding queues
        for (auto &q : queues_) q->abort();
        for (auto &w : windows_) w->abort();
    });
    std::unique_ptr<SignalWatcher> signals;
    if (options.handle_signals) signals = std::make_unique<SignalWatcher>(control_, options.on_sighup);

    spdlog::info("pipeline '{}': running {} stages", manifest_.name, stages_.size());
    if (state_) {
        // Saving as acknowledgements move bounds what an at-least-once
        // loader may get twice after a crash. Exactly-once loaders skip what
        // they hold, so then a save a second is enough (saves cost syncs).
        const bool all_exactly_once = result.delivery.at("at_least_once").as_array().empty();
        const uint32_t interval = manifest_.checkpoint_interval_ms.value_or(all_exactly_once ? 1000 : 0);
        result.delivery["checkpoint_interval_ms"] = interval;
        state_->start(std::chrono::milliseconds(interval));
    }
    {
        std::lock_guard lock(report_mutex_);
        delivery_plan_ = result.delivery;
    }
    for (auto it = stages_.rbegin(); it != stages_.rend(); ++it) (*it)->launch();
    phase_ = Phase::running;
    warn_if_root_listening();
    // A reload may add stages meanwhile: look the next one up each time.
    for (size_t i = 0;; ++i) {
        Stage *stage = nullptr;
        {
            auto reading = read_lock();
            if (i >= stages_.size()) break;
            stage = stages_[i].get();
        }
        stage->join();
    }
    // A reload under way ends first; later ones find the run finishing.
    std::lock_guard no_reload(reload_mutex_);
    for (auto &s : stages_) s->join();
    for (auto &s : retired_) s->join();
    phase_ = Phase::finishing;
    signals.reset();
    if (state_) {
        // Every batch is gone by now, so every acknowledgement is in.
        if (std::string problem = state_->finish(); !problem.empty()) {
            spdlog::error("{}", problem);
            result.delivery["save_error"] = problem;
        }
        result.delivery["acknowledged"] = state_->acknowledged();
        result.delivery["unacknowledged"] = state_->unacknowledged();
        state_.reset(); // releases the lock
    }
    double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    result.memory = bj::object{{"limit_mb", manifest_.memory_limit_mb},
                               {"peak_batch_mb", double(budget.peak()) / double(1 << 20)}};

    if (control_.aborted() || control_.failed()) {
        result.status = "failed";
        result.exit_code = 1;
        result.error = control_.abort_message();
    } else if (control_.stop_requested()) {
        result.status = "stopped";
    } else {
        result.status = "completed";
    }
    // Calls abandoned after a timeout get a last chance to return.
    for (auto &s : stages_) {
        if (!s->wait_for_abandoned_calls(std::chrono::seconds(5))) {
            spdlog::error("[{}] a plugin call that timed out has still not returned; exiting without waiting for it",
                          s->id());
            result.calls_still_running = true;
        }
    }
    // Stop every instance: loaders that were flushed keep their output,
    // the others discard what they had not committed.
    for (auto &s : stages_) s->stop_and_destroy();
    crash_reporter::set_marker_path("");
    if (!crash_marker_path_.empty() && result.status != "failed") {
        // Past the crash: the next run is in process again.
        std::error_code ec;
        if (std::filesystem::remove(crash_marker_path_, ec) && recovering_from_crash_)
            spdlog::info("the stage that crashed the last run is past it; the next run runs it in process again");
    }
    result.report = build_report(*this, result, started_wall, seconds);
    if (result.status != "failed") {
        // The run got to its end; the data may still not be good enough.
        std::vector<std::string> crossed = manifest_.thresholds.crossed(result.report);
        if (!crossed.empty()) {
            bj::array lines;
            for (const std::string &c : crossed) {
                spdlog::error("the run crossed a threshold: {}", c);
                result.error += (result.error.empty() ? "" : "; ") + c;
                lines.emplace_back(c);
            }
            result.exit_code = kExitThresholds;
            result.report["exit_code"] = result.exit_code;
            result.report["error"] = result.error;
            result.report["thresholds_crossed"] = std::move(lines);
        }
    }
    publish_final_report(result);
    return result;
}

} // namespace sluice
