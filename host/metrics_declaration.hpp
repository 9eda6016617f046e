// What a stage says about its metrics (sluice.metrics/1), held by the host:
// which counters are gauges, the ratios to derive, the summary line to
// render. Lets the report show any plugin's metrics without knowing it.
// Encoded as bytes to cross from an isolated worker.
#pragma once

#include <sluice/plugin.h>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sluice {

struct MetricsDeclaration {
    struct Metric {
        std::string name, unit, help;
        bool gauge = false;
    };
    struct Ratio {
        std::string name, numerator, denominator, help;
    };
    std::vector<Metric> metrics;
    std::vector<Ratio> ratios;
    std::string summary; // the template, "" for none

    // From the plugin's extension (null: nothing declared). Strings the
    // plugin left null become empty; entries without a name are skipped.
    static MetricsDeclaration from(const sluice_metrics_ext *ext);
    bool empty() const { return metrics.empty() && ratios.empty() && summary.empty(); }
    bool is_gauge(std::string_view name) const;
    const Metric *find(std::string_view name) const;

    std::string encode() const;
    static std::optional<MetricsDeclaration> decode(std::string_view bytes);

    // Each ratio's value over `counters` (left out when its denominator is
    // absent or zero).
    std::map<std::string, double> ratio_values(const std::map<std::string, int64_t> &counters) const;
    // The summary line over `counters` and the ratios. A declared counter
    // never added to is 0; a part ('|') naming a value the run does not have
    // (a gauge never reported, a ratio over 0, an undeclared name) is left
    // out, and without its first part there is no line ("").
    std::string render_summary(const std::map<std::string, int64_t> &counters) const;
};

} // namespace sluice
