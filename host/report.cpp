#include "report.hpp"

#include "acknowledgement.hpp"
#include "error_policy.hpp"
#include "kinds.hpp"
#include "pipeline.hpp"

#include <fmt/format.h>

#include <sluice/utc_time.hpp>

#include <algorithm>
#include <cmath>
#include <ctime>
#include <set>

namespace sluice {

namespace bj = boost::json;

namespace {

bj::array reasons_json(const std::vector<std::pair<std::string, uint64_t>> &reasons) {
    bj::array a;
    for (const auto &[reason, count] : reasons) a.push_back(bj::object{{"reason", reason}, {"count", count}});
    return a;
}

double rate(uint64_t n, double seconds) { return seconds > 0 ? double(n) / seconds : 0.0; }

} // namespace

bj::object build_report(const Pipeline &pipeline, const RunResult &result,
                        std::chrono::system_clock::time_point started, double seconds) {
    bj::object r;
    r["pipeline"] = pipeline.manifest().name;
    r["manifest"] = pipeline.manifest().path;
    r["status"] = result.status;
    r["exit_code"] = result.exit_code;
    if (!result.error.empty()) r["error"] = result.error;
    r["manifest_hash"] = pipeline.manifest().hash;
    r["sluice_version"] = SLUICE_VERSION;
    r["plugin_abi"] = std::to_string(SLUICE_ABI_MAJOR) + "." + std::to_string(SLUICE_ABI_MINOR);
    r["started_at"] = utc_time(started);
    r["finished_at"] = utc_time(started + std::chrono::duration_cast<std::chrono::system_clock::duration>(
                                              std::chrono::duration<double>(seconds)));
    r["seconds"] = seconds;

    uint64_t extracted = 0, unreadable = 0, loaded = 0, rejected = 0, errors = 0, dropped = 0, dead_lettered = 0;
    uint64_t filtered = 0, unaccounted = 0, delivered = 0;
    uint64_t acknowledged = 0, unacknowledged = 0, enricher_in = 0;
    double enriched = 0;
    bool tracked = false, enrichers = false;
    const std::set<std::string> dead_letter_stages = pipeline.dead_letter_stages();
    bj::object destinations;
    bj::array stages;
    for (const auto &sp : pipeline.stages()) {
        const Stage &s = *sp;
        StageTotals t = s.metrics().totals();
        double secs = s.metrics().seconds();
        bj::object o;
        o["id"] = s.id();
        o["kind"] = std::string(kind_name(s.kind()));
        o["plugin"] = s.spec().plugin;
        o["plugin_version"] = s.plugin().desc->version ? s.plugin().desc->version : "";
        o["library"] = s.plugin().library->path();
        // Versions over time: a live reload may swap the plugin's library.
        bj::array versions;
        for (const Stage::PluginEpoch &e : s.plugin_history())
            versions.push_back(bj::object{{"version", e.version}, {"library", e.library}, {"since", utc_time(e.since)}});
        o["plugin_versions"] = std::move(versions);
        o["threads"] = s.spec().threads;
        o["batch_size"] = s.spec().batch_size;
        if (s.input()) {
            o["queue_capacity"] = s.input()->capacity();
            o["queue_size"] = s.input()->size(); // batches waiting now
            o["queue_peak"] = s.input()->peak();
        }
        // A source that hears of delivery: how far that has come.
        if (!s.trackers().empty()) {
            const AckTracker::Snapshot sum = AckTracker::total(s.trackers());
            o["acknowledged"] = sum.acknowledged;
            o["unacknowledged"] = sum.unacknowledged;
            acknowledged += sum.acknowledged;
            unacknowledged += sum.unacknowledged;
            tracked = true;
        }
        bj::array inputs;
        for (const InputRef &in : s.spec().inputs)
            inputs.push_back(bj::value(in.output.empty() ? in.stage : in.stage + "." + in.output));
        o["inputs"] = std::move(inputs);
        if (s.spec().on_error.then == ErrorPolicy::Then::dead_letter)
            o["dead_letter_to"] = s.spec().on_error.dead_letter;
        o["in"] = t.in;
        o["out"] = t.out;
        o["rejected"] = t.rejected;
        o["errors"] = t.errors;
        o["dropped"] = t.dropped;
        o["filtered"] = t.filtered;       // dropped on purpose by the plugin
        o["unaccounted"] = t.unaccounted; // the plugin said nothing of them (also errors)
        o["dead_lettered"] = t.dead_lettered;
        o["isolation"] = s.spec().isolation.process ? "process" : "none";
        o["calls_running_at_exit"] = s.abandoned_calls();
        if (s.spec().isolation.process) {
            IsolationTotals iso = s.metrics().isolation();
            bj::object crashes;
            for (const auto &[cause, n] : iso.crashes) crashes[cause] = n;
            bj::array poison;
            for (uint64_t id : iso.poison_records) poison.push_back(id);
            o["workers"] = bj::object{{"restarts", iso.restarts},
                                      {"crashes", std::move(crashes)},
                                      {"poison_records", iso.poison_count},
                                      {"poison_record_ids", std::move(poison)},
                                      {"peak_rss_mb", iso.peak_rss_mb},
                                      {"memory_limit_mb", s.spec().isolation.memory_limit_mb},
                                      {"max_restarts", s.spec().isolation.max_restarts}};
        }
        // Records emitted on each output, read or not (so that, stage by
        // stage, in = outputs + rejected + errors can be checked).
        bj::object outputs;
        std::vector<uint64_t> counts = s.metrics().output_counts();
        for (size_t i = 0; i < counts.size() && i < s.plugin().output_names.size(); ++i)
            outputs[s.plugin().output_names[i]] = counts[i];
        o["outputs"] = std::move(outputs);
        o["retries"] = t.retries;
        o["on_error"] = std::string(then_name(s.spec().on_error.then));
        o["batches"] = t.batches;
        o["seconds"] = secs;
        o["busy_seconds"] = t.busy_seconds;
        o["records_per_second"] = rate(s.kind() == SLUICE_KIND_EXTRACTOR ? t.out : t.in, secs);
        // A service idles between requests: its rate over the time its
        // plugin was working says what it can take.
        o["records_per_busy_second"] = rate(s.kind() == SLUICE_KIND_EXTRACTOR ? t.out : t.in, t.busy_seconds);
        // What each record costs this stage in CPU (its plugin and the
        // host's work for it, on its threads): which stage costs what.
        o["cpu_seconds"] = t.cpu_seconds;
        const uint64_t handled = s.kind() == SLUICE_KIND_EXTRACTOR ? t.out + t.errors : t.in;
        o["cpu_us_per_record"] = handled ? t.cpu_seconds * 1e6 / double(handled) : 0.0;
        bj::object counters;
        for (const auto &[k, v] : s.metrics().counters()) counters[k] = v;
        // What the plugin declared (sluice.metrics/1): its ratios beside its
        // counters, and its line for the summary.
        const std::map<std::string, int64_t> values = s.metrics().counters();
        for (const auto &[name, value] : s.declared_metrics().ratio_values(values))
            if (!o.contains(name)) o[name] = value;
        if (std::string line = s.declared_metrics().render_summary(values); !line.empty()) o["summary"] = line;
        o["counters"] = std::move(counters);
        o["reject_reasons"] = reasons_json(s.metrics().top_reasons(true, 10));
        o["error_reasons"] = reasons_json(s.metrics().top_reasons(false, 10));
        stages.push_back(std::move(o));

        if (s.kind() == SLUICE_KIND_ENRICHER) {
            // A plugin that says which records it enriched (a ratio named
            // enrichment_rate) is taken at its word; for the others, what
            // came out of what went in.
            enrichers = true;
            enricher_in += t.in;
            const auto ratios = s.declared_metrics().ratio_values(values);
            auto declared = ratios.find("enrichment_rate");
            enriched += declared != ratios.end() ? declared->second * double(t.in) : double(std::min(t.out, t.in));
        }
        if (s.kind() == SLUICE_KIND_EXTRACTOR) {
            extracted += t.in;
            unreadable += t.errors;
        }
        if (s.kind() == SLUICE_KIND_LOADER) {
            loaded += t.out;
            const bool dead_letters = dead_letter_stages.count(s.id()) > 0;
            if (!dead_letters) delivered += t.out;
            destinations[s.id()] = bj::object{{"loaded", t.out}, {"dead_letters", dead_letters}};
        }
        rejected += t.rejected;
        errors += t.errors;
        dropped += t.dropped;
        filtered += t.filtered;
        unaccounted += t.unaccounted;
        dead_lettered += t.dead_lettered;
    }
    // Quality: each gate's verdicts, and the share of extracted records that
    // no gate rejected and no stage failed. With fan-out a record rejected on
    // two branches counts twice, so the score is a lower bound.
    bj::array gates;
    for (const auto &sp : pipeline.stages()) {
        if (sp->kind() != SLUICE_KIND_VALIDATOR) continue;
        StageTotals t = sp->metrics().totals();
        gates.push_back(bj::object{{"id", sp->id()},
                                   {"passed", t.in - t.rejected - std::min(t.errors, t.in - t.rejected)},
                                   {"failed", t.rejected},
                                   {"reasons", reasons_json(sp->metrics().top_reasons(true, 10))}});
    }
    // Unreadable input never became a record: it counts against the error
    // rate, not against the records that were extracted.
    uint64_t bad = rejected + (errors - unreadable);
    double score = extracted ? double(extracted > bad ? extracted - bad : 0) / double(extracted) : 1.0;
    uint64_t seen = extracted + unreadable;
    r["quality"] = bj::object{{"quality_score", score},
                              {"dead_lettered", dead_lettered},
                              {"error_rate", seen ? double(errors) / double(seen) : 0.0},
                              {"passed_every_gate", extracted > bad ? extracted - bad : 0},
                              {"gates", std::move(gates)}};
    if (enrichers)
        r["quality"].as_object()["enrichment_rate"] = enricher_in ? enriched / double(enricher_in) : 1.0;
    r["records"] = bj::object{{"extracted", extracted},
                              {"unreadable", unreadable},
                              {"loaded", loaded},       // summed over destinations: fan-out counts twice
                              {"delivered", delivered}, // loaded by destinations other than dead-letter ones
                              {"destinations", std::move(destinations)},
                              {"rejected", rejected},
                              {"errors", errors},
                              {"dropped", dropped},
                              {"filtered", filtered},
                              {"unaccounted", unaccounted},
                              {"dead_lettered", dead_lettered}};
    if (!result.delivery.empty() || tracked) {
        bj::object delivery = result.delivery;
        // While running, what the sources have been told so far (the
        // final report has the state's own figures).
        if (!delivery.contains("acknowledged")) delivery["acknowledged"] = acknowledged;
        if (!delivery.contains("unacknowledged")) delivery["unacknowledged"] = unacknowledged;
        r["delivery"] = std::move(delivery);
    }
    if (!result.memory.empty()) r["memory"] = result.memory;
    r["stages"] = std::move(stages);
    return r;
}

std::string format_report_table(const bj::object &report) {
    std::string out;
    // A run stopped by a signal is usually a service that idled between
    // requests: its rate over busy time says more than over the wall clock.
    const bool service = report.at("status").as_string() == "stopped";
    const char *rate_key = service ? "records_per_busy_second" : "records_per_second";
    out += fmt::format("{:<16} {:<11} {:<10} {:>3} {:>10} {:>10} {:>9} {:>7} {:>8} {:>11} {:>10}\n", "stage", "kind",
                       "plugin", "thr", "in", "out", "rejected", "errors", "seconds",
                       service ? "rec/busy s" : "records/s", "cpu us/rec");
    for (const auto &v : report.at("stages").as_array()) {
        const bj::object &s = v.as_object();
        const bj::value *cpu = s.if_contains("cpu_us_per_record");
        out += fmt::format("{:<16} {:<11} {:<10} {:>3} {:>10} {:>10} {:>9} {:>7} {:>8.3f} {:>11.0f} {:>10.3f}\n",
                           std::string(s.at("id").as_string()), std::string(s.at("kind").as_string()),
                           std::string(s.at("plugin").as_string()), s.at("threads").to_number<int64_t>(),
                           s.at("in").to_number<uint64_t>(), s.at("out").to_number<uint64_t>(),
                           s.at("rejected").to_number<uint64_t>(), s.at("errors").to_number<uint64_t>(),
                           s.at("seconds").to_number<double>(), s.at(rate_key).to_number<double>(),
                           cpu ? cpu->to_number<double>() : 0.0);
    }
    const bj::object &rec = report.at("records").as_object();
    // With more than one destination, what each loaded: "loaded" sums them.
    std::string per_destination;
    if (const bj::value *d = rec.if_contains("destinations"); d && d->as_object().size() > 1)
        for (const auto &kv : d->as_object())
            per_destination += (per_destination.empty() ? " (" : ", ") + std::string(kv.key()) + " " +
                               std::to_string(kv.value().at("loaded").to_number<uint64_t>()) +
                               (kv.value().at("dead_letters").as_bool() ? " dead letters" : "");
    if (!per_destination.empty()) per_destination += ")";
    out += fmt::format("pipeline '{}' {} in {:.3f} s: {} extracted, {} loaded{}, {} rejected, {} errors\n",
                       std::string(report.at("pipeline").as_string()), std::string(report.at("status").as_string()),
                       report.at("seconds").to_number<double>(), rec.at("extracted").to_number<uint64_t>(),
                       rec.at("loaded").to_number<uint64_t>(), per_destination, rec.at("rejected").to_number<uint64_t>(),
                       rec.at("errors").to_number<uint64_t>());
    const bj::object &q = report.at("quality").as_object();
    // Rounded down: a run that lost or failed a record never reads 1.000.
    auto down = [](double v) { return std::floor(v * 1000.0) / 1000.0; };
    out += fmt::format("quality score {:.3f} ({} of {} extracted records passed every gate), error rate {:.3f}\n",
                       down(q.at("quality_score").to_number<double>()), q.at("passed_every_gate").to_number<uint64_t>(),
                       rec.at("extracted").to_number<uint64_t>(), q.at("error_rate").to_number<double>());
    for (const auto &g : q.at("gates").as_array())
        out += fmt::format("  gate {}: {} passed, {} failed\n", std::string(g.at("id").as_string()),
                           g.at("passed").to_number<uint64_t>(), g.at("failed").to_number<uint64_t>());
    if (rec.at("dead_lettered").to_number<uint64_t>() > 0)
        out += fmt::format("  {} records were dead-lettered\n", rec.at("dead_lettered").to_number<uint64_t>());
    if (rec.at("unaccounted").to_number<uint64_t>() > 0)
        out += fmt::format("  {} records were not accounted for by their plugin (they took the error path)\n",
                           rec.at("unaccounted").to_number<uint64_t>());
    for (const auto &v : report.at("stages").as_array()) {
        const bj::object &s = v.as_object();
        const bj::value *w = s.if_contains("workers");
        if (!w) continue;
        const bj::object &wo = w->as_object();
        std::string crashes;
        for (const auto &c : wo.at("crashes").as_object())
            crashes += fmt::format("{}{} {}", crashes.empty() ? "" : ", ", c.value().to_number<uint64_t>(),
                                   std::string(c.key()));
        out += fmt::format("  {}: isolated, {} worker restarts{}, {} poison records, peak {} MB\n",
                           std::string(s.at("id").as_string()), wo.at("restarts").to_number<uint64_t>(),
                           crashes.empty() ? "" : " (crashes: " + crashes + ")",
                           wo.at("poison_records").to_number<uint64_t>(), wo.at("peak_rss_mb").to_number<uint64_t>());
    }
    if (rec.at("dropped").to_number<uint64_t>() > 0)
        out += fmt::format("  {} records were emitted on outputs nothing reads\n", rec.at("dropped").to_number<uint64_t>());
    if (const bj::value *d = report.if_contains("delivery")) {
        const bj::object &o = d->as_object();
        auto count = [&](const char *k) { return o.contains(k) ? o.at(k).to_number<uint64_t>() : 0; };
        if (const bj::value *file = o.if_contains("state_file"))
            out += fmt::format("  delivery: state {}{}; {} records acknowledged, {} not\n",
                               std::string(file->as_string()),
                               o.at("resumed").as_bool() ? fmt::format(" (resumed, {} replayed)", count("replayed")) : "",
                               count("acknowledged"), count("unacknowledged"));
        else
            out += fmt::format("  delivery: {} records acknowledged to their source, {} not\n", count("acknowledged"),
                               count("unacknowledged"));
    }
    for (const auto &v : report.at("stages").as_array()) {
        const bj::object &s = v.as_object();
        if (const bj::value *line = s.if_contains("summary"))
            out += fmt::format("  {}: {}\n", std::string(s.at("id").as_string()), std::string(line->as_string()));
        for (const char *key : {"reject_reasons", "error_reasons"}) {
            const bj::array &reasons = s.at(key).as_array();
            if (reasons.empty()) continue;
            out += fmt::format("  {} {}:\n", std::string(s.at("id").as_string()),
                               key[0] == 'r' ? "rejected because" : "errors");
            for (const auto &rv : reasons)
                out += fmt::format("    {:>8}  {}\n", rv.at("count").to_number<uint64_t>(),
                                   std::string(rv.at("reason").as_string()));
        }
    }
    if (const bj::value *e = report.if_contains("error")) out += "error: " + std::string(e->as_string()) + "\n";
    return out;
}

} // namespace sluice
