#include "prometheus_metrics.hpp"

#include "acknowledgement.hpp"

#include "kinds.hpp"
#include "pipeline.hpp"
#include "stage.hpp"

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include <sys/resource.h>
#include <unistd.h>

#include <fstream>
#include <map>

namespace sluice {

namespace pm = prometheus;

namespace {

double resident_bytes() {
    std::ifstream statm("/proc/self/statm");
    long pages = 0, resident = 0;
    statm >> pages >> resident;
    return double(resident) * double(sysconf(_SC_PAGESIZE));
}

double cpu_seconds() {
    rusage u{};
    getrusage(RUSAGE_SELF, &u);
    auto secs = [](const timeval &t) { return double(t.tv_sec) + double(t.tv_usec) / 1e6; };
    return secs(u.ru_utime) + secs(u.ru_stime);
}

// Taken when the program starts (static initialisation), not at the first scrape.
const double kStartTimeSeconds =
    double(std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
               .count()) /
    1000.0;

// "requests{code=202}" -> ("requests", {"code": "202"}); a plain name has no
// label.
std::pair<std::string, std::map<std::string, std::string>> split_labels(const std::string &name) {
    size_t open = name.find('{');
    if (open == std::string::npos || name.back() != '}') return {name, {}};
    std::map<std::string, std::string> labels;
    std::string_view inside(name.data() + open + 1, name.size() - open - 2);
    while (!inside.empty()) {
        size_t comma = inside.find(',');
        std::string_view part = inside.substr(0, comma);
        size_t eq = part.find('=');
        if (eq != std::string_view::npos) {
            std::string_view value = part.substr(eq + 1);
            if (value.size() >= 2 && value.front() == '"' && value.back() == '"') value = value.substr(1, value.size() - 2);
            labels[prometheus_name(part.substr(0, eq))] = std::string(value);
        }
        if (comma == std::string_view::npos) break;
        inside.remove_prefix(comma + 1);
    }
    return {name.substr(0, open), labels};
}

} // namespace

std::string prometheus_name(std::string_view name) {
    std::string out;
    for (char c : name) out += (std::isalnum(static_cast<unsigned char>(c)) || c == '_') ? c : '_';
    if (out.empty() || std::isdigit(static_cast<unsigned char>(out[0]))) out.insert(out.begin(), '_');
    return out;
}

std::string prometheus_text(const Pipeline &pipeline) {
    pm::Registry registry;
    const std::string name = pipeline.manifest().name;

    auto &records = pm::BuildCounter()
                        .Name("sluice_stage_records_total")
                        .Help("Records through a stage, by outcome (out counts each output read by another stage)")
                        .Register(registry);
    auto &batches = pm::BuildCounter().Name("sluice_stage_batches_total").Help("Batches a stage handled").Register(registry);
    auto &busy = pm::BuildCounter()
                     .Name("sluice_stage_busy_seconds_total")
                     .Help("Time spent inside the stage's plugin calls")
                     .Register(registry);
    auto &cpu = pm::BuildCounter()
                    .Name("sluice_stage_cpu_seconds_total")
                    .Help("CPU the stage's threads used: its plugin calls and the host's work for its batches")
                    .Register(registry);
    auto &retries = pm::BuildCounter().Name("sluice_stage_retries_total").Help("Records or batches tried again").Register(registry);
    auto &latency = pm::BuildHistogram()
                        .Name("sluice_stage_call_duration_seconds")
                        .Help("Duration of a stage's plugin calls (one call handles one batch)")
                        .Register(registry);
    auto &queue = pm::BuildGauge().Name("sluice_stage_queue_batches").Help("Batches waiting in a stage's input queue").Register(registry);
    auto &capacity = pm::BuildGauge()
                         .Name("sluice_stage_queue_capacity_batches")
                         .Help("Batches a stage's input queue holds at most")
                         .Register(registry);
    auto &threads = pm::BuildGauge().Name("sluice_stage_worker_threads").Help("A stage's worker threads").Register(registry);
    auto &restarts = pm::BuildCounter()
                         .Name("sluice_stage_worker_restarts_total")
                         .Help("Worker processes started anew after one died (isolated stages)")
                         .Register(registry);
    auto &crashes = pm::BuildCounter()
                        .Name("sluice_stage_worker_crashes_total")
                        .Help("Worker processes that died, by cause (isolated stages)")
                        .Register(registry);
    auto &reasons = pm::BuildCounter()
                        .Name("sluice_stage_reasons_total")
                        .Help("Records rejected or failed, by reason (a stage keeps up to 256 reasons of each; the "
                              "rest count as \"(other reasons)\")")
                        .Register(registry);
    auto &acknowledged = pm::BuildCounter()
                             .Name("sluice_source_acknowledged_records_total")
                             .Help("Records an extractor read that every destination has taken (its position may move "
                                   "past them: the checkpoint, the source's acknowledgement)")
                             .Register(registry);
    auto &unacknowledged = pm::BuildGauge()
                               .Name("sluice_source_unacknowledged_records")
                               .Help("Records an extractor read that are not yet safe at every destination")
                               .Register(registry);
    auto &poison = pm::BuildCounter()
                       .Name("sluice_stage_poison_records_total")
                       .Help("Records found to kill a stage's worker")
                       .Register(registry);
    // Plugin-declared metrics, one family per name (several stages may share one).
    std::map<std::string, pm::Family<pm::Counter> *> plugin_counters;
    std::map<std::string, pm::Family<pm::Gauge> *> plugin_gauges;

    auto reading = pipeline.read_lock(); // not while a reload swaps a stage's plugin
    for (const auto &sp : pipeline.stages()) {
        Stage &s = *sp;
        const pm::Labels base{{"pipeline", name}, {"stage", s.id()}, {"plugin", s.spec().plugin}};
        auto with = [&](const char *key, std::string value) {
            pm::Labels l = base;
            l[key] = std::move(value);
            return l;
        };
        StageTotals t = s.metrics().totals();
        const std::pair<const char *, uint64_t> outcomes[] = {
            {"in", t.in},           {"out", t.out},         {"rejected", t.rejected},
            {"failed", t.errors},   {"dead_lettered", t.dead_lettered}, {"unaccounted", t.unaccounted},
            {"filtered", t.filtered}, {"dropped", t.dropped}};
        for (const auto &[outcome, n] : outcomes) records.Add(with("outcome", outcome)).Increment(double(n));
        for (bool rejected : {true, false})
            for (const auto &[reason, n] : s.metrics().top_reasons(rejected, StageMetrics::kMaxReasons + 1)) {
                pm::Labels l = with("outcome", rejected ? "rejected" : "failed");
                l["reason"] = reason;
                reasons.Add(l).Increment(double(n));
            }
        batches.Add(base).Increment(double(t.batches));
        busy.Add(base).Increment(t.busy_seconds);
        cpu.Add(base).Increment(t.cpu_seconds);
        retries.Add(base).Increment(double(t.retries));
        CallLatency::Snapshot l = s.metrics().latency().snapshot();
        pm::Histogram::BucketBoundaries bounds(CallLatency::kBounds.begin(), CallLatency::kBounds.end());
        std::vector<double> counts(l.counts.begin(), l.counts.end());
        latency.Add(base, bounds).ObserveMultiple(counts, l.sum_seconds);
        if (s.input()) {
            queue.Add(base).Set(double(s.input()->size()));
            capacity.Add(base).Set(double(s.input()->capacity()));
        }
        threads.Add(base).Set(double(s.spec().threads));
        if (!s.trackers().empty()) {
            const AckTracker::Snapshot sum = AckTracker::total(s.trackers());
            acknowledged.Add(base).Increment(double(sum.acknowledged));
            unacknowledged.Add(base).Set(double(sum.unacknowledged));
        }
        if (s.spec().isolation.process) {
            IsolationTotals iso = s.metrics().isolation();
            restarts.Add(base).Increment(double(iso.restarts));
            for (const auto &[cause, n] : iso.crashes) crashes.Add(with("cause", cause)).Increment(double(n));
            poison.Add(base).Increment(double(iso.poison_count));
        }
        const MetricsDeclaration &declared = s.declared_metrics();
        for (const auto &[counter, value] : s.metrics().counters()) {
            auto [metric, labels] = split_labels(counter);
            pm::Labels l = base;
            for (auto &[k, v] : labels) l[k] = v;
            const MetricsDeclaration::Metric *d = declared.find(metric);
            std::string help = d && !d->help.empty() ? d->help : "Counter '" + metric + "' of the stage's plugin";
            if (d && !d->unit.empty()) help += " (" + d->unit + ")";
            const std::string family = "sluice_plugin_" + prometheus_name(metric);
            if (declared.is_gauge(counter) || declared.is_gauge(metric)) {
                auto &f = plugin_gauges[family];
                if (!f) f = &pm::BuildGauge().Name(family).Help(help).Register(registry);
                f->Add(l).Set(double(value));
            } else {
                auto &f = plugin_counters[family];
                if (!f) f = &pm::BuildCounter().Name(family + "_total").Help(help).Register(registry);
                f->Add(l).Increment(double(value < 0 ? 0 : value));
            }
        }
    }
    pm::BuildGauge()
        .Name("sluice_pipeline_up")
        .Help("1 while the pipeline runs, 0 before it starts and once it is finishing")
        .Register(registry)
        .Add({{"pipeline", name}})
        .Set(pipeline.phase() == Pipeline::Phase::running ? 1 : 0);
    pm::BuildGauge()
        .Name("process_resident_memory_bytes")
        .Help("Resident memory size in bytes")
        .Register(registry)
        .Add({})
        .Set(resident_bytes());
    pm::BuildCounter()
        .Name("process_cpu_seconds_total")
        .Help("User and system CPU time spent in seconds")
        .Register(registry)
        .Add({})
        .Increment(cpu_seconds());
    pm::BuildGauge()
        .Name("process_start_time_seconds")
        .Help("Start time of the process since the Unix epoch in seconds")
        .Register(registry)
        .Add({})
        .Set(kStartTimeSeconds);
    return pm::TextSerializer().Serialize(registry.Collect());
}

} // namespace sluice
