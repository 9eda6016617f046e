// Extractor "postgres": a query's rows through a server-side cursor, in
// batches (memory bounded on any table), read-only, optionally incremental
// on a cursor column. See README.md.
#pragma once

#include "pg_connection.hpp"

#include "../common/sql_table.hpp"

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
    static config::Spec config_spec() {
        return connection_spec().include(sql::RowSource::spec(", schema.table allowed"));
    }

    explicit PgExtractor(const Context &ctx);
    // sluice.preflight/1: the server answers and the table may be read.
    std::vector<std::string> preflight() const { return connection_.preflight(table_, {"SELECT"}, false); }
    void start();
    bool pull(Emitter &out, uint32_t max_records);
    void stop();
    // sluice.checkpoint/1: {"cursor": <last value read>} with cursor_column.
    std::string checkpoint() const;
    void restore(std::string_view position);

private:
    Host host_;
    ConnectionSettings connection_;
    std::string table_, query_, cursor_column_;
    std::string cursor_json_; // the cursor value as JSON ("" = none)
    std::unique_ptr<Connection> conn_;
    bool open_ = false, done_ = false;
    std::string row_;
};

} // namespace sluice::plugins::postgres
