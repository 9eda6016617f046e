// No record is ever lost: checks a run report's counts stage by stage and
// edge by edge. Every record a stage receives is sent on, rejected by a rule
// or failed (then dead-lettered, skipped or failing the run); every record a
// stage receives was sent to it by a stage it reads or dead-lettered to it.
// Chained along any branch this gives: records extracted = loaded +
// dead-lettered + rejected + skipped + dropped on outputs nothing reads.
// Valid for stages that emit one record per record they pass (every plugin
// the tests use) and for runs that were not aborted.
#pragma once

#include <boost/json.hpp>

#include <string>
#include <vector>

namespace sluice::test {

// One line per broken equation; empty when every record is accounted for.
std::vector<std::string> unaccounted_records(const boost::json::object &report);

// Reads a run report (--report FILE) and fails the current test for every
// record it cannot account for (runs that did not abort: an aborted run
// drops what was in flight by design).
boost::json::object read_checked_report(const std::string &path);

// The entry of stage `id` in a report's (or /status's) "stages"; throws when
// there is none.
const boost::json::object &stage_of(const boost::json::object &report, const std::string &id);

} // namespace sluice::test
