// What a pipeline test (`sluice test`) expects at one stage, and the check
// of what the stage actually sent there, with messages that show the
// difference (which record, which field, what was expected, what came).
#pragma once

#include <boost/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace sluice {

// A record as a capture stage received it.
struct CapturedRecord {
    std::string payload;
    std::string content_type; // "" for JSON
    std::vector<std::pair<std::string, std::string>> attributes;
};

// One condition every record must meet: on a payload field ("a.b" or a JSON
// pointer "/a/b") or on an attribute, with any of equals, exists, type,
// matches (ECMAScript regex, whole value), min, max, one_of, contains
// (substring, or element of an array).
struct Condition {
    std::string json_path; // where it is written, for messages
    std::string field;     // payload field, or
    std::string attribute; // attribute name
    std::optional<boost::json::value> equals;
    std::optional<bool> exists;
    std::string type; // string, integer, number, boolean, object, array, null
    std::string matches;
    std::optional<double> min, max;
    std::optional<boost::json::array> one_of;
    std::optional<boost::json::value> contains;
};

struct Expectation {
    std::string json_path; // "/tests/0/expect/1"
    std::string stage;
    std::string output; // "" for the stage's first output (a loader: what it received)
    std::optional<uint64_t> count;
    std::optional<boost::json::array> records; // exactly these, in order unless `unordered`
    bool unordered = false;
    std::optional<boost::json::array> contains; // each matches some record (objects: the fields given)
    std::vector<Condition> each;
    std::optional<std::vector<std::string>> rejected; // reasons the stage rejected records for
    std::optional<std::vector<std::string>> errors;   // reasons the stage failed records for

    // Whether records at the stage's output must be captured.
    bool looks_at_records() const { return count || records || contains || !each.empty(); }
};

// Reads one entry of "expect"; problems are "PATH: what".
Expectation parse_expectation(const boost::json::value &v, const std::string &json_path,
                              std::vector<std::string> &problems);

// Each difference between what `e` expects and `got`, one message each
// (several lines for a record that differs); empty when it holds.
std::vector<std::string> check_records(const Expectation &e, const std::vector<CapturedRecord> &got);

// `expected` reasons against the report's [{"reason", "count"}] of a stage.
std::vector<std::string> check_reasons(const std::string &what, const std::vector<std::string> &expected,
                                       const boost::json::array &reported);

// Numbers compare by value (1 equals 1.0); with `partial`, an expected object
// only needs the keys it names. On a mismatch, `where` says which path and
// how ("/amount: expected 12.5, got \"12.5\"").
bool json_matches(const boost::json::value &expected, const boost::json::value &actual, bool partial,
                  std::string &where, const std::string &path = "");

} // namespace sluice
