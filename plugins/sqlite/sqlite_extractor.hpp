// Extractor "sqlite": the rows of a query or table, streamed in batches,
// optionally incremental on a cursor column. See README.md.
#pragma once

#include "../common/path_checks.hpp"
#include "../common/resource_uri.hpp"
#include "sqlite_db.hpp"

#include "../common/sql_table.hpp"

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
    static config::Spec config_spec() {
        using config::Field;
        return config::Spec{
            Field::string("path", "Database file, relative to the manifest (opened read-only)").required().not_empty(),
        }
            .include(sql::RowSource::spec(""))
            .add(Field::strings("json_columns", "Text columns holding JSON, written into records as JSON values "
                                                "(columns declared JSON are too)"));
    }

    explicit SqliteExtractor(const Context &ctx);
    void start();
    bool pull(Emitter &out, uint32_t max_records);
    void stop();
    // sluice.checkpoint/1: {"cursor": <last value read>}, with cursor_column.
    std::string checkpoint() const;
    void restore(std::string_view position);
    // sluice.resources/1: its table (a query is not declared).
    // sluice.preflight/1: the database file is there to be read.
    std::vector<std::string> preflight() const {
        if (std::string p = readable_file(path_); !p.empty()) return {"path: " + p};
        return {};
    }
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
