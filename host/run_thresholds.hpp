// When a run that reached its end still fails: the data was not good enough.
// A scheduler sees exit code 3 (kExitThresholds) and the report says which
// threshold was crossed, so a run in which every record failed no longer
// looks like a success.
#pragma once

#include <boost/json.hpp>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sluice {

// The exit code of a run that finished but crossed a threshold.
constexpr int kExitThresholds = 3;

struct RunThresholds {
    std::optional<double> max_error_rate; // record errors / records seen
    std::optional<double> min_quality;    // the report's quality score
    bool fail_on_rejects = false;         // any record a gate rejected
    // On by default: records were extracted and every one failed, or none
    // reached a destination other than a dead-letter stage.
    bool fail_if_nothing_loaded = true;

    // Adds a --fail-on condition: "errors" (any record error), "rejects"
    // (any rejected record), "error_rate>X", "quality<X" (X from 0 to 1).
    // Returns what is wrong with `condition`, or "".
    std::string add_condition(std::string_view condition);

    // One line per threshold the finished run's report crosses, e.g.
    // "error rate 1.000 is above max_error_rate 0.050".
    std::vector<std::string> crossed(const boost::json::object &report) const;
};

} // namespace sluice
