// What the SQL plugins (sqlite, postgres) share: where an extractor reads
// rows from (a table or a query, with an optional cursor column) and where a
// loader writes them (a table, insert or upsert on a key, the columns, and
// CREATE TABLE from them), each declared once as config and read once.
#pragma once

#include <sluice/config_spec.hpp>
#include <sluice/json.hpp>

#include <boost/json.hpp>

#include <algorithm>
#include <string>
#include <string_view>
#include <vector>

namespace sluice::plugins::sql {

// "name" as an SQL identifier: double quotes, quotes inside doubled (the
// same in SQLite and PostgreSQL).
inline std::string quote_name(std::string_view name) {
    std::string out = "\"";
    for (char c : name) {
        if (c == '"') out += '"';
        out += c;
    }
    return out + "\"";
}

// An extractor's rows: a table or a query, read incrementally on a cursor.
struct RowSource {
    std::string table, query, cursor_column;
    std::string cursor_json; // cursor_start as JSON text, or ""

    // `table_note` says what a table name may be ("schema.table allowed").
    static config::Spec spec(std::string_view table_note) {
        using config::Field;
        return {
            Field::string("table", "Read this table (every column" + std::string(table_note) +
                                       "), ordered by cursor_column when set")
                .not_empty(),
            Field::string("query", "Or run this SELECT (one of table and query); with cursor_column it must filter "
                                   "and order on :cursor, e.g. WHERE (:cursor IS NULL OR id > :cursor) ORDER BY id")
                .not_empty(),
            Field::string("cursor_column",
                          "Incremental: a column that grows with new rows (id, updated_at); its last acknowledged "
                          "value is kept in the pipeline state (state_dir) and the next run reads only rows after it")
                .not_empty(),
            Field::custom("cursor_start", R"({"type": ["string", "number"]})",
                          "Incremental: the value to start after on a first run (default: from the beginning)"),
        };
    }

    static RowSource read(const json::Config &c) {
        RowSource s;
        s.table = c.string("table");
        s.query = c.string("query");
        if (s.table.empty() == s.query.empty()) c.fail(s.table.empty() ? "query" : "table", "give either table or query");
        s.cursor_column = c.string("cursor_column");
        if (!s.query.empty() && !s.cursor_column.empty() && s.query.find(":cursor") == std::string::npos)
            c.fail("query", "with cursor_column the query must filter on :cursor, e.g. WHERE (:cursor IS NULL OR " +
                                s.cursor_column + " > :cursor) ORDER BY " + s.cursor_column);
        if (const boost::json::value *v = c.find("cursor_start"); v && !v->is_null())
            s.cursor_json = boost::json::serialize(*v);
        return s;
    }
};

struct Column {
    std::string name, type; // type: "" unless given for create_table
};

// A loader's table: insert or upsert, the columns written, CREATE TABLE.
struct TableTarget {
    std::string table;
    bool upsert = false;
    std::vector<std::string> key;
    std::vector<Column> columns; // empty until match_columns: every column of the table
    bool create = false;

    // `types` names the column types of this database, for the description.
    static config::Spec spec(std::string_view table_note, std::string_view types) {
        using config::Field;
        return {
            Field::string("table", "Table to write" + std::string(table_note)).required().not_empty(),
            Field::choice("mode", {"insert", "upsert"},
                          "upsert: INSERT ... ON CONFLICT (key) DO UPDATE SET the other columns")
                .default_to("insert"),
            Field::strings("key", "Key columns (required for upsert; the primary key with create_table)"),
            Field::custom("columns", R"({"type": "array", "items": {"type": ["string", "object"]}})",
                          "Columns to write: names, or {\"name\", \"type\"} (" + std::string(types) +
                              ") for create_table. Default: every column of the table"),
            Field::boolean("create_table", "CREATE TABLE IF NOT EXISTS from columns and key (as primary key)")
                .default_to(false),
        };
    }

    // `types_required`: create_table needs a type for every column.
    static TableTarget read(const json::Config &c, bool types_required) {
        TableTarget t;
        t.table = c.required_string("table");
        std::string mode = c.string("mode");
        if (mode != "insert" && mode != "upsert") c.fail("mode", "expected insert or upsert");
        t.upsert = mode == "upsert";
        t.key = c.strings("key");
        if (t.upsert && t.key.empty()) c.fail("key", "required with mode upsert: the key columns");
        if (const boost::json::value *cols = c.find("columns"); cols && cols->is_array()) {
            for (const boost::json::value &v : cols->get_array()) {
                const boost::json::object *o = v.if_object();
                const boost::json::value *name = o ? o->if_contains("name") : nullptr;
                if (v.is_string()) {
                    t.columns.push_back({std::string(v.get_string()), ""});
                } else if (name && name->is_string()) {
                    const boost::json::value *type = o->if_contains("type");
                    t.columns.push_back({std::string(name->get_string()),
                                         type && type->is_string() ? std::string(type->get_string()) : ""});
                } else {
                    c.fail("columns", "each column is a name or {\"name\": ..., \"type\": ...}");
                }
            }
        }
        t.create = c.boolean("create_table");
        if (t.create && t.columns.empty()) c.fail("create_table", "needs columns to create the table from");
        if (t.create && types_required)
            for (const Column &col : t.columns)
                if (col.type.empty()) c.fail("columns", "create_table needs a type for column '" + col.name + "'");
        return t;
    }

    // CREATE TABLE IF NOT EXISTS with `quoted_table` (quoted by the caller:
    // PostgreSQL quotes schema and table apart).
    std::string create_sql(const std::string &quoted_table) const {
        std::string sql = "CREATE TABLE IF NOT EXISTS " + quoted_table + " (";
        for (size_t i = 0; i < columns.size(); ++i)
            sql += (i ? ", " : "") + quote_name(columns[i].name) + (columns[i].type.empty() ? "" : " " + columns[i].type);
        if (!key.empty()) sql += ", PRIMARY KEY (" + names(key) + ")";
        return sql + ")";
    }

    // The columns written: every one of `existing` when none were given,
    // else the given ones, each of which must exist. Throws sluice::Error.
    void match_columns(const std::vector<std::string> &existing) {
        if (columns.empty()) {
            for (const auto &n : existing) columns.push_back({n, ""});
            return;
        }
        for (const Column &col : columns)
            if (std::find(existing.begin(), existing.end(), col.name) == existing.end())
                throw Error("column '" + col.name + "' is not in table '" + table + "'");
    }

    // The column list, quoted: "a", "b".
    std::string column_list() const {
        std::vector<std::string> n;
        for (const Column &col : columns) n.push_back(col.name);
        return names(n);
    }

    // " ON CONFLICT (key) DO UPDATE SET c = EXCLUDED.c, ..." (DO NOTHING when
    // every column is a key column); "" for insert.
    std::string upsert_clause() const {
        if (!upsert) return {};
        std::string set;
        for (const Column &col : columns)
            if (std::find(key.begin(), key.end(), col.name) == key.end())
                set += (set.empty() ? "" : ", ") + quote_name(col.name) + " = EXCLUDED." + quote_name(col.name);
        return " ON CONFLICT (" + names(key) + ") DO " + (set.empty() ? "NOTHING" : "UPDATE SET " + set);
    }

private:
    static std::string names(const std::vector<std::string> &list) {
        std::string out;
        for (size_t i = 0; i < list.size(); ++i) out += (i ? ", " : "") + quote_name(list[i]);
        return out;
    }
};

} // namespace sluice::plugins::sql
