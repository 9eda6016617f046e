// Extractor "postgres": a query's rows through a server-side cursor, in
// batches (memory bounded on any table), read-only, optionally incremental
// on a cursor column. See README.md.
#pragma once

#include "pg_connection.hpp"

#include <sluice/plugin.hpp>

#include <memory>
#include <string>

namespace sluice::plugins::postgres {

class PgExtractor {
public:
    static constexpr sluice_kind kind = SLUICE_KIND_EXTRACTOR;
    static constexpr const char *name = "postgres";
    static constexpr const char *version = "1.0.0";
    static constexpr const char *description =
        "Reads a PostgreSQL query or table through a server-side cursor in batches, read-only; incremental on a cursor column.";
    static constexpr uint64_t capabilities = SLUICE_CAP_SINGLE_WORKER;
    static constexpr const char *config_schema = R"json({
  "type": "object",
  "required": ["conninfo"],
  "properties": {
    "conninfo": {"type": "string", "minLength": 1, "description": "libpq connection string or URI: \"host=db port=5432 dbname=shop user=etl\" or postgresql://etl@db/shop"},
    "password_env": {"type": "string", "minLength": 1, "description": "Environment variable holding the password (keeps it out of the manifest)"},
    "table": {"type": "string", "minLength": 1, "description": "Read this table (schema.table allowed), ordered by cursor_column when set"},
    "query": {"type": "string", "minLength": 1, "description": "Or run this SELECT; with cursor_column it must filter and order on :cursor, e.g. WHERE (:cursor IS NULL OR id > :cursor) ORDER BY id"},
    "cursor_column": {"type": "string", "minLength": 1, "description": "Incremental: a column that grows with new rows (id, updated_at); its last acknowledged value is kept in the pipeline state (state_dir) and the next run reads only rows after it"},
    "cursor_start": {"description": "Incremental: the value to start after on a first run"}
  }
})json";

    explicit PgExtractor(const Context &ctx);
    void start();
    bool pull(Emitter &out, uint32_t max_records);
    void stop();
    // sluice.checkpoint/1: {"cursor": <last value read>} with cursor_column.
    std::string checkpoint() const;
    void restore(std::string_view position);

private:
    Host host_;
    std::string conninfo_, password_, table_, query_, cursor_column_;
    std::string cursor_json_; // the cursor value as JSON ("" = none)
    std::unique_ptr<Connection> conn_;
    bool open_ = false, done_ = false;
    std::string row_;
};

} // namespace sluice::plugins::postgres
