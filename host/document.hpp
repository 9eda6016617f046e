// A manifest or a pipeline test file as a JSON value, whichever of JSON or
// YAML it is written in (".yaml"/".yml": YAML, anything else: JSON). Both
// give the same value, so one checker serves both; a YAML document also
// remembers where each JSON path starts, so that a message about
// "/stages/2/threads" can say "m.yaml:14:14: /stages/2/threads: ...".
#pragma once

#include <boost/json.hpp>

#include <map>
#include <stdexcept>
#include <string>

namespace sluice {

// A document that is not valid JSON or YAML: "FILE:LINE:COLUMN: what".
class DocumentSyntaxError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// Where each JSON path is written in a YAML file: line and column (1-based)
// of its value and, for an object member, of its key.
struct SourcePositions {
    std::map<std::string, std::pair<size_t, size_t>> values, keys;

    // "LINE:COLUMN" of `json_path` (its key with `at_key`), or of the
    // nearest enclosing path that has one (a missing key is reported where
    // its object is); "" when unknown (JSON: Boost.JSON keeps no positions).
    std::string locate(const std::string &json_path, bool at_key = false) const;
    // "FILE: /path: what" as "FILE:LINE:COLUMN: /path: what" when the path's
    // place is known (at the key for "unknown key"); else as it is.
    std::string place(const std::string &message, const std::string &file) const;
};

struct Document {
    boost::json::value root;
    SourcePositions positions; // filled for YAML only

    std::string locate(const std::string &json_path) const { return positions.locate(json_path); }
};

bool is_yaml_path(const std::string &path);

// Parses `text`, read from `path` (which picks the syntax and names the file
// in errors). YAML follows the 1.2 core schema: unquoted true/false, null,
// ~ and numbers are those, everything quoted or else is a string, so "no"
// and "0755" mean what they say in JSON. Duplicate keys and keys that are not
// strings are errors.
Document parse_document(const std::string &text, const std::string &path);

// The whole file at `path`, or an error naming it and what it was read as
// ("PATH: cannot open manifest: No such file or directory").
std::string read_text_file(const std::string &path, const std::string &what = "file");

// Writes `text` to `path` through PATH.tmp renamed into place, so that a
// reader sees the old file or the new one, never half of one. "" on
// success, else "cannot write PATH: reason".
std::string write_text_file_atomically(const std::string &path, const std::string &text);

// A JSON value as YAML (block style, strings quoted when YAML would read them
// as something else) and as indented JSON; both end with a newline.
std::string to_yaml(const boost::json::value &v);
std::string to_pretty_json(const boost::json::value &v);

// Line and column (1-based) of a byte offset, for syntax errors.
std::pair<size_t, size_t> line_and_column(const std::string &text, size_t offset);

} // namespace sluice
