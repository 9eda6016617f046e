// The run report: per-stage counts and rates, as JSON (--report FILE) and as
// a table on stderr.
#pragma once

#include <boost/json.hpp>

#include <chrono>
#include <string>

namespace sluice {

class Pipeline;
struct RunResult;

boost::json::object build_report(const Pipeline &pipeline, const RunResult &result,
                                 std::chrono::system_clock::time_point started, double seconds);

// The report as an aligned text table with totals and top failure reasons.
std::string format_report_table(const boost::json::object &report);

} // namespace sluice
