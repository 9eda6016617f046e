#include "pipeline.hpp"

#include "config_schema.hpp"
#include "kinds.hpp"
#include "report.hpp"
#include "signal_watcher.hpp"

#include <spdlog/spdlog.h>

#include <chrono>
#include <sstream>

namespace sluice {

SetupError::SetupError(std::vector<std::string> messages)
    : std::runtime_error(messages.empty() ? std::string("pipeline setup failed") : messages.front()),
      messages_(std::move(messages)) {}

Pipeline::Pipeline(Manifest manifest) : manifest_(std::move(manifest)) {
    std::vector<std::string> errors;
    const std::string &file = manifest_.path;
    PluginRegistry registry(plugin_search_dirs(manifest_.plugin_dirs));
    std::vector<LoadedStage> plugins;
    for (const StageSpec &spec : manifest_.stages) {
        try {
            plugins.push_back(registry.find(spec.kind, spec.plugin, spec.library));
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
            for (const std::string &m : check_against_schema(spec.config, p.schema, spec.json_path + "/config"))
                errors.push_back(file + ": " + m);
        }
    }
    if (!errors.empty()) throw SetupError(std::move(errors));

    for (size_t i = 0; i < manifest_.stages.size(); ++i)
        stages_.push_back(std::make_unique<Stage>(manifest_.stages[i], plugins[i], control_, manifest_.base_dir));
    for (auto &stage : stages_) {
        std::string problem = stage->create_instances();
        if (!problem.empty()) errors.push_back(file + ": " + stage->spec().json_path + "/config: " + problem);
    }
    if (!errors.empty()) {
        stages_.clear();
        throw SetupError(std::move(errors));
    }

    // Linear flow: each stage's first output feeds the next stage.
    for (size_t i = 1; i < stages_.size(); ++i) {
        const StageSpec &s = stages_[i]->spec();
        auto q = std::make_shared<BatchQueue>(s.queue_capacity, s.ordered, 1);
        stages_[i]->set_input(q);
        stages_[i - 1]->connect(0, q);
        queues_.push_back(q);
    }
    // Ordered stages release batches in extraction order; the window keeps
    // the extractor from running further ahead of the last of them than the
    // queues and workers in between can hold.
    for (size_t i = stages_.size(); i-- > 1;) {
        if (!stages_[i]->spec().ordered) continue;
        uint64_t size = 0;
        for (size_t j = 1; j <= i; ++j) size += stages_[j]->spec().queue_capacity + stages_[j]->spec().threads;
        window_ = std::make_shared<SequenceWindow>(size);
        stages_[i]->input()->set_window(window_);
        stages_[0]->set_sequence_window(window_);
        break;
    }
}

Pipeline::~Pipeline() {
    // Instances go before their libraries (held by the stages' LoadedStage).
    stages_.clear();
}

std::string Pipeline::describe() const {
    std::ostringstream out;
    out << "pipeline '" << manifest_.name << "' (" << stages_.size() << " stages)\n";
    for (size_t i = 0; i < stages_.size(); ++i) {
        const Stage &s = *stages_[i];
        const StageSpec &spec = s.spec();
        out << "  " << (i == 0 ? "  " : "-> ") << spec.id << "  [" << kind_name(spec.kind) << " " << spec.plugin
            << " " << s.plugin().desc->version << "]  threads=" << spec.threads << " batch=" << spec.batch_size;
        if (i > 0) out << " queue=" << spec.queue_capacity << (spec.ordered ? " ordered" : "");
        out << "\n";
    }
    return out.str();
}

RunResult Pipeline::run(const RunOptions &options) {
    RunResult result;
    auto started_wall = std::chrono::system_clock::now();
    auto started = std::chrono::steady_clock::now();

    // Start loaders first: a destination that cannot open fails the run
    // before anything is read.
    for (auto it = stages_.rbegin(); it != stages_.rend(); ++it) {
        std::string problem = (*it)->start_instances();
        if (!problem.empty()) {
            result.error = "stage '" + (*it)->id() + "' (" + std::string(kind_name((*it)->kind())) + " " +
                           (*it)->spec().plugin + ") failed to start: " + problem;
            spdlog::error("{}", result.error);
            for (auto &s : stages_) s->stop_and_destroy();
            result.status = "failed";
            result.exit_code = 1;
            result.report = build_report(*this, result, started_wall, 0);
            return result;
        }
    }

    control_.on_abort([this] {
        for (auto &q : queues_) q->abort();
        if (window_) window_->abort();
    });
    std::unique_ptr<SignalWatcher> signals;
    if (options.handle_signals) signals = std::make_unique<SignalWatcher>(control_);

    spdlog::info("pipeline '{}': running {} stages", manifest_.name, stages_.size());
    for (auto it = stages_.rbegin(); it != stages_.rend(); ++it) (*it)->launch();
    for (auto &s : stages_) s->join();
    signals.reset();
    double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();

    if (control_.aborted()) {
        result.status = "failed";
        result.exit_code = 1;
        result.error = control_.abort_message();
    } else if (control_.stop_requested()) {
        result.status = "stopped";
    } else {
        result.status = "completed";
    }
    // Stop every instance: loaders that were flushed keep their output,
    // the others discard what they had not committed.
    for (auto &s : stages_) s->stop_and_destroy();
    result.report = build_report(*this, result, started_wall, seconds);
    return result;
}

} // namespace sluice
