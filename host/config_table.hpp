// A stage's config as a table, from the JSON Schema its plugin declares:
// what `sluice plugins` prints and what each plugin README's config table is
// generated from (`sluice plugins --markdown`), so the docs cannot drift
// from what the host checks.
#pragma once

#include <boost/json.hpp>

#include <string>
#include <vector>

namespace sluice {

struct ConfigRow {
    std::string key;          // "path", "retry.max_attempts", "rules[].field"
    std::string type;         // "string", "integer", "array of strings", "`a`, `b`" (choices)
    std::string default_text; // "required", a default as JSON, or ""
    std::string meaning;      // the description
    std::string bounds;       // "at least 1, at most 65535", or ""
    bool secret = false;
};

// One row per property, nested objects and objects in arrays after their
// parent ("retry.backoff_ms", "rules[].field"). Empty for a schema without
// properties.
std::vector<ConfigRow> config_rows(const boost::json::value &schema);

// Indented lines for `sluice plugins`.
std::string config_rows_text(const std::vector<ConfigRow> &rows, const std::string &indent);

// A Markdown table: | key | type | default | meaning |.
std::string config_rows_markdown(const std::vector<ConfigRow> &rows);

} // namespace sluice
