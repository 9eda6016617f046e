#include "pg_extractor.hpp"

#include <sluice/json.hpp>

#include <cstdlib>

namespace sluice::plugins::postgres {

namespace bj = boost::json;

namespace {

// Type OIDs (pg_type.h).
constexpr Oid kBool = 16, kInt8 = 20, kInt2 = 21, kInt4 = 23, kOid = 26, kFloat4 = 700, kFloat8 = 701,
              kNumeric = 1700, kJson = 114, kJsonb = 3802, kTimestamp = 1114, kTimestamptz = 1184;

bool is_number_type(Oid t) {
    return t == kInt8 || t == kInt2 || t == kInt4 || t == kOid || t == kFloat4 || t == kFloat8 || t == kNumeric;
}

// A PostgreSQL text value as JSON.
void append_value(std::string &json, Oid type, const char *v, int len) {
    std::string_view text(v, size_t(len));
    if (type == kBool) {
        json += text == "t" ? "true" : "false";
    } else if (is_number_type(type)) {
        // NaN and infinities have no JSON number: a string then.
        if (text == "NaN" || text == "Infinity" || text == "-Infinity") json::append_string(json, text);
        else json.append(text);
    } else if (type == kJson || type == kJsonb) {
        json.append(text);
    } else if (type == kTimestamp || type == kTimestamptz) {
        // "2026-03-01 10:00:00+00" -> ISO 8601 "2026-03-01T10:00:00+00:00".
        std::string iso(text);
        if (auto sp = iso.find(' '); sp != std::string::npos) iso[sp] = 'T';
        if (type == kTimestamptz && iso.size() >= 3) {
            auto sign = iso.find_last_of("+-");
            if (sign != std::string::npos && sign > 10 && iso.size() - sign == 3) iso += ":00";
        }
        json::append_string(json, iso);
    } else {
        json::append_string(json, text);
    }
}

} // namespace

PgExtractor::PgExtractor(const Context &ctx) : host_(ctx.host) {
    json::Config c(ctx.config_json);
    connection_ = ConnectionSettings::read(c);
    sql::RowSource source = sql::RowSource::read(c);
    table_ = source.table;
    query_ = source.query;
    cursor_column_ = source.cursor_column;
    cursor_json_ = source.cursor_json;
}

void PgExtractor::start() {
    conn_ = std::make_unique<Connection>(connection_.conninfo, connection_.password);
    // One snapshot for the whole read, and a promise to write nothing.
    conn_->exec("BEGIN TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY");
    std::string sql;
    std::optional<std::string> cursor;
    if (!cursor_json_.empty()) {
        bj::value v = bj::parse(cursor_json_);
        cursor = v.is_string() ? std::string(v.get_string()) : cursor_json_;
    }
    // The cursor goes in as a quoted literal: PostgreSQL types it from the
    // column it is compared with (a bound parameter of unknown type cannot be
    // used twice in a cursor's query).
    std::string literal = "NULL";
    if (cursor) {
        char *escaped = PQescapeLiteral(conn_->raw(), cursor->c_str(), cursor->size());
        if (!escaped) throw Error("PostgreSQL: " + conn_->error());
        literal = escaped;
        PQfreemem(escaped);
    }
    if (!table_.empty()) {
        sql = "SELECT * FROM " + quote_identifier(table_);
        if (!cursor_column_.empty()) {
            if (cursor) sql += " WHERE " + quote_identifier(cursor_column_) + " > " + literal;
            sql += " ORDER BY " + quote_identifier(cursor_column_);
        }
    } else {
        sql = query_;
        for (size_t p; (p = sql.find(":cursor")) != std::string::npos;) sql.replace(p, 7, literal);
    }
    conn_->exec("DECLARE sluice_rows NO SCROLL CURSOR FOR " + sql);
    open_ = true;
    if (cursor) host_.info("reading rows after " + cursor_column_ + " = " + *cursor);
}

void PgExtractor::stop() {
    if (conn_ && open_) conn_->try_exec("ROLLBACK"); // read-only: nothing to keep
    open_ = false;
    conn_.reset();
}

bool PgExtractor::pull(Emitter &out, uint32_t max_records) {
    if (done_) return true;
    Result r = conn_->exec("FETCH FORWARD " + std::to_string(max_records) + " FROM sluice_rows");
    PGresult *res = r.get();
    const int rows = PQntuples(res), cols = PQnfields(res);
    int cursor_col = cursor_column_.empty() ? -1 : PQfnumber(res, quote_identifier(cursor_column_).c_str());
    if (!cursor_column_.empty() && cursor_col < 0 && cols > 0)
        throw FatalError("cursor_column '" + cursor_column_ + "' is not a column of the result");
    for (int i = 0; i < rows; ++i) {
        row_.clear();
        row_ += '{';
        for (int c = 0; c < cols; ++c) {
            if (c) row_ += ',';
            json::append_string(row_, PQfname(res, c));
            row_ += ':';
            if (PQgetisnull(res, i, c)) row_ += "null";
            else append_value(row_, PQftype(res, c), PQgetvalue(res, i, c), PQgetlength(res, i, c));
        }
        row_ += '}';
        out.emit_new(row_);
        if (cursor_col >= 0 && !PQgetisnull(res, i, cursor_col)) {
            std::string_view v(PQgetvalue(res, i, cursor_col), size_t(PQgetlength(res, i, cursor_col)));
            cursor_json_.clear();
            if (is_number_type(PQftype(res, cursor_col))) cursor_json_ = std::string(v);
            else json::append_string(cursor_json_, v);
        }
    }
    if (rows < int(max_records)) {
        conn_->exec("CLOSE sluice_rows");
        conn_->exec("COMMIT");
        open_ = false;
        done_ = true;
        return true;
    }
    return false;
}

std::string PgExtractor::checkpoint() const {
    if (cursor_column_.empty() || cursor_json_.empty()) return {};
    return json::PositionWriter().raw("cursor", cursor_json_).text();
}

void PgExtractor::restore(std::string_view position) {
    if (cursor_column_.empty()) return;
    json::SavedPosition saved(position);
    const bj::value *cursor = saved.find("cursor");
    if (!cursor || !(cursor->is_number() || cursor->is_string())) saved.fail("no \"cursor\" (a number or a string)");
    cursor_json_ = bj::serialize(*cursor);
}

} // namespace sluice::plugins::postgres
