#include "run_thresholds.hpp"

#include <fmt/format.h>

#include <charconv>

namespace sluice {

namespace bj = boost::json;

namespace {

std::optional<double> fraction(std::string_view text) {
    double v = 0;
    auto r = std::from_chars(text.data(), text.data() + text.size(), v);
    if (text.empty() || r.ec != std::errc() || r.ptr != text.data() + text.size() || !(v >= 0 && v <= 1))
        return std::nullopt;
    return v;
}

uint64_t count(const bj::object &o, const char *key) {
    const bj::value *v = o.if_contains(key);
    return v && v->is_number() ? v->to_number<uint64_t>() : 0;
}

double number(const bj::object &o, const char *key) {
    const bj::value *v = o.if_contains(key);
    return v && v->is_number() ? v->to_number<double>() : 0;
}

} // namespace

std::string RunThresholds::add_condition(std::string_view condition) {
    const std::string_view kErrorRate = "error_rate>", kQuality = "quality<";
    if (condition == "errors") {
        max_error_rate = 0;
    } else if (condition == "rejects") {
        fail_on_rejects = true;
    } else if (condition.substr(0, kErrorRate.size()) == kErrorRate) {
        auto rate = fraction(condition.substr(kErrorRate.size()));
        if (!rate) return "--fail-on " + std::string(condition) + ": expected a rate from 0 to 1 after '>'";
        max_error_rate = rate;
    } else if (condition.substr(0, kQuality.size()) == kQuality) {
        auto score = fraction(condition.substr(kQuality.size()));
        if (!score) return "--fail-on " + std::string(condition) + ": expected a score from 0 to 1 after '<'";
        min_quality = score;
    } else {
        return "--fail-on: unknown condition '" + std::string(condition) +
               "' (expected errors, rejects, error_rate>X or quality<X)";
    }
    return {};
}

std::vector<std::string> RunThresholds::crossed(const bj::object &report) const {
    std::vector<std::string> out;
    const bj::value *records_v = report.if_contains("records");
    const bj::value *quality_v = report.if_contains("quality");
    if (!records_v || !records_v->is_object() || !quality_v || !quality_v->is_object()) return out;
    const bj::object &records = records_v->get_object();
    const bj::object &quality = quality_v->get_object();
    const uint64_t seen = count(records, "extracted") + count(records, "unreadable");
    const uint64_t errors = count(records, "errors");
    const double error_rate = number(quality, "error_rate");
    const double score = number(quality, "quality_score");
    if (max_error_rate && seen > 0 && error_rate > *max_error_rate)
        out.push_back(fmt::format("error rate {:.3f} ({} of {} records) is above max_error_rate {}", error_rate,
                                  errors, seen, *max_error_rate));
    if (min_quality && count(records, "extracted") > 0 && score < *min_quality)
        out.push_back(fmt::format("quality score {:.3f} is below min_quality {}", score, *min_quality));
    if (fail_on_rejects && count(records, "rejected") > 0)
        out.push_back(fmt::format("{} records were rejected (--fail-on rejects)", count(records, "rejected")));
    if (fail_if_nothing_loaded && seen > 0) {
        if (errors >= seen)
            out.push_back(fmt::format("every record failed ({} of {}); set fail_if_nothing_loaded to false to "
                                      "accept such a run",
                                      errors, seen));
        else if (count(records, "delivered") == 0 && count(records, "extracted") > 0)
            out.push_back(fmt::format("no record of the {} extracted reached a destination (dead letters aside); set "
                                      "fail_if_nothing_loaded to false to accept such a run",
                                      count(records, "extracted")));
    }
    return out;
}

} // namespace sluice
