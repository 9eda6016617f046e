#include "metrics_declaration.hpp"

#include "length_prefixed.hpp"

#include <fmt/format.h>

#include <cstring>

namespace sluice {

using length_prefixed::put;

namespace {

std::string text(const char *s) { return s ? std::string(s) : std::string(); }

} // namespace

MetricsDeclaration MetricsDeclaration::from(const sluice_metrics_ext *ext) {
    MetricsDeclaration d;
    if (!ext || ext->struct_size < sizeof(sluice_metrics_ext)) return d;
    for (uint32_t i = 0; ext->metrics && i < ext->metric_count; ++i) {
        const sluice_metric &m = ext->metrics[i];
        if (!m.name || !*m.name) continue;
        d.metrics.push_back(Metric{m.name, text(m.unit), text(m.help), m.kind == SLUICE_METRIC_GAUGE});
    }
    for (uint32_t i = 0; ext->ratios && i < ext->ratio_count; ++i) {
        const sluice_metric_ratio &r = ext->ratios[i];
        if (!r.name || !*r.name || !r.numerator || !r.denominator) continue;
        d.ratios.push_back(Ratio{r.name, r.numerator, r.denominator, text(r.help)});
    }
    d.summary = text(ext->summary);
    return d;
}

const MetricsDeclaration::Metric *MetricsDeclaration::find(std::string_view name) const {
    for (const Metric &m : metrics)
        if (m.name == name) return &m;
    return nullptr;
}

bool MetricsDeclaration::is_gauge(std::string_view name) const {
    for (const Metric &m : metrics)
        if (m.gauge && m.name == name) return true;
    return false;
}

std::string MetricsDeclaration::encode() const {
    std::string out;
    put(out, std::to_string(metrics.size()));
    for (const Metric &m : metrics) {
        put(out, m.name);
        put(out, m.unit);
        put(out, m.help);
        put(out, m.gauge ? "g" : "c");
    }
    put(out, std::to_string(ratios.size()));
    for (const Ratio &r : ratios) {
        put(out, r.name);
        put(out, r.numerator);
        put(out, r.denominator);
        put(out, r.help);
    }
    put(out, summary);
    return out;
}

std::optional<MetricsDeclaration> MetricsDeclaration::decode(std::string_view bytes) {
    MetricsDeclaration d;
    length_prefixed::Reader c{bytes};
    auto count = [&]() -> size_t {
        const std::string n = c.str();
        if (!c.ok || n.empty() || n.size() > 6 || n.find_first_not_of("0123456789") != std::string::npos)
            return c.ok = false, 0;
        return std::stoul(n);
    };
    for (size_t i = 0, n = count(); c.ok && i < n; ++i) {
        Metric m;
        m.name = c.str();
        m.unit = c.str();
        m.help = c.str();
        m.gauge = c.str() == "g";
        d.metrics.push_back(std::move(m));
    }
    for (size_t i = 0, n = c.ok ? count() : 0; c.ok && i < n; ++i) {
        Ratio r;
        r.name = c.str();
        r.numerator = c.str();
        r.denominator = c.str();
        r.help = c.str();
        d.ratios.push_back(std::move(r));
    }
    d.summary = c.str();
    if (!c.ok || !c.in.empty()) return std::nullopt;
    return d;
}

std::map<std::string, double> MetricsDeclaration::ratio_values(const std::map<std::string, int64_t> &counters) const {
    std::map<std::string, double> out;
    for (const Ratio &r : ratios) {
        auto num = counters.find(r.numerator), den = counters.find(r.denominator);
        if (num == counters.end() || den == counters.end() || den->second == 0) continue;
        out[r.name] = double(num->second) / double(den->second);
    }
    return out;
}

std::string MetricsDeclaration::render_summary(const std::map<std::string, int64_t> &counters) const {
    if (summary.empty()) return {};
    const std::map<std::string, double> ratio = ratio_values(counters);
    std::string out;
    size_t start = 0;
    while (start <= summary.size()) {
        size_t end = summary.find('|', start);
        if (end == std::string::npos) end = summary.size();
        const std::string_view part(summary.data() + start, end - start);
        std::string rendered;
        bool complete = true;
        for (size_t i = 0; i < part.size() && complete;) {
            const size_t open = part.find('{', i);
            if (open == std::string_view::npos) {
                rendered.append(part.substr(i));
                break;
            }
            rendered.append(part.substr(i, open - i));
            const size_t close = part.find('}', open);
            if (close == std::string_view::npos) {
                rendered.append(part.substr(open));
                break;
            }
            std::string_view field = part.substr(open + 1, close - open - 1);
            std::string_view precision;
            if (size_t colon = field.find(':'); colon != std::string_view::npos) {
                precision = field.substr(colon + 1);
                field = field.substr(0, colon);
            }
            const std::string key(field);
            if (auto r = ratio.find(key); r != ratio.end()) {
                const int digits = precision.size() == 3 && precision[0] == '.' && precision[2] == 'f'
                                       ? precision[1] - '0'
                                       : 3;
                rendered += fmt::format("{:.{}f}", r->second, digits);
            } else if (auto v = counters.find(key); v != counters.end()) {
                rendered += std::to_string(v->second);
            } else if (const Metric *m = find(key); m && !m->gauge) {
                rendered += "0"; // a counter never added to
            } else {
                complete = false;
            }
            i = close + 1;
        }
        if (complete) out += rendered;
        else if (start == 0) return {}; // the first part is the line's subject
        start = end + 1;
    }
    return out;
}

} // namespace sluice
