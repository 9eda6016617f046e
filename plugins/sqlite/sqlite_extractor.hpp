// Extractor "sqlite": the rows of a query or table, streamed in batches,
// optionally incremental on a cursor column. See README.md.
#pragma once

#include "../common/resource_uri.hpp"
#include "sqlite_db.hpp"

#include <sluice/json.hpp>
#include <sluice/plugin.hpp>

#include <memory>
#include <optional>
#include <set>
#include <string>

namespace sluice::plugins::sqlite {

class SqliteExtractor {
public:
    static constexpr sluice_kind kind = SLUICE_KIND_EXTRACTOR;
    static constexpr const char *name = "sqlite";
    static constexpr const char *version = "1.0.0";
    static constexpr const char *description =
        "Reads the rows of a SQLite query or table as JSON records, streaming; incremental on a cursor column.";
    static constexpr uint64_t capabilities = SLUICE_CAP_SINGLE_WORKER;
    static constexpr const char *config_schema = R"json({
  "type": "object",
  "required": ["path"],
  "properties": {
    "path": {"type": "string", "minLength": 1, "description": "Database file, relative to the manifest (opened read-only)"},
    "table": {"type": "string", "minLength": 1, "description": "Read this table (all columns; ordered by cursor_column when set)"},
    "query": {"type": "string", "minLength": 1, "description": "Or run this SELECT; with cursor_column it must filter and order on the parameter :cursor, e.g. WHERE (:cursor IS NULL OR id > :cursor) ORDER BY id"},
    "cursor_column": {"type": "string", "minLength": 1, "description": "Incremental: a column that grows with new rows (id, updated_at); its last acknowledged value is kept in the pipeline state (state_dir) and the next run reads only rows after it"},
    "cursor_start": {"description": "Incremental: the value to start after on a first run (default: from the beginning)"},
    "json_columns": {"type": "array", "items": {"type": "string"}, "description": "Text columns holding JSON, written into records as JSON values (columns declared JSON are too)"}
  }
})json";

    explicit SqliteExtractor(const Context &ctx);
    void start();
    bool pull(Emitter &out, uint32_t max_records);
    void stop();
    // sluice.checkpoint/1: {"cursor": <last value read>}, with cursor_column.
    std::string checkpoint() const;
    void restore(std::string_view position);
    // sluice.resources/1: its table (a query is not declared).
    std::string resources() const {
        return table_.empty() ? std::string() : Resources().reads("table", sqlite_uri(path_, table_)).json();
    }

private:
    void append_row(std::string &json);

    Host host_;
    std::string path_, table_, query_, cursor_column_;
    std::string cursor_json_; // JSON text of the cursor value to read after ("" = none)
    std::set<std::string> json_columns_;
    std::unique_ptr<Database> db_;
    std::optional<Statement> statement_;
    int cursor_index_ = -1; // result column of cursor_column
    std::string row_;
    json::RecordWriter writer_;
    bool done_ = false;
};

} // namespace sluice::plugins::sqlite
