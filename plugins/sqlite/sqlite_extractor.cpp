#include "sqlite_extractor.hpp"

#include <sluice/json.hpp>

#include <cctype>
#include <charconv>

namespace sluice::plugins::sqlite {

namespace bj = boost::json;

namespace {

std::string base64(const unsigned char *p, size_t n) {
    static const char *t = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string out;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = uint32_t(p[i]) << 16 | (i + 1 < n ? uint32_t(p[i + 1]) << 8 : 0) | (i + 2 < n ? p[i + 2] : 0);
        out += t[v >> 18 & 63];
        out += t[v >> 12 & 63];
        out += i + 1 < n ? t[v >> 6 & 63] : '=';
        out += i + 2 < n ? t[v & 63] : '=';
    }
    return out;
}

bool declared(sqlite3_stmt *st, int col, std::string_view word) {
    const char *d = sqlite3_column_decltype(st, col);
    if (!d) return false;
    std::string upper;
    for (const char *p = d; *p; ++p) upper += char(std::toupper(static_cast<unsigned char>(*p)));
    return upper.find(word) != std::string::npos;
}

void append_double(std::string &out, double d) {
    if (!std::isfinite(d)) {
        out += "null";
        return;
    }
    char buf[32];
    auto r = std::to_chars(buf, buf + sizeof buf, d);
    out.append(buf, r.ptr);
}

// Binds a JSON scalar to parameter `index`.
void bind_json(sqlite3_stmt *st, int index, const bj::value &v) {
    if (v.is_int64()) sqlite3_bind_int64(st, index, v.get_int64());
    else if (v.is_uint64()) sqlite3_bind_double(st, index, double(v.get_uint64()));
    else if (v.is_double()) sqlite3_bind_double(st, index, v.get_double());
    else if (v.is_bool()) sqlite3_bind_int(st, index, v.get_bool() ? 1 : 0);
    else if (v.is_string()) sqlite3_bind_text(st, index, v.get_string().data(), int(v.get_string().size()), SQLITE_TRANSIENT);
    else sqlite3_bind_null(st, index);
}

} // namespace

SqliteExtractor::SqliteExtractor(const Context &ctx) : host_(ctx.host) {
    json::Config c(ctx.config_json);
    path_ = ctx.resolve_path(c.required_string("path"));
    sql::RowSource source = sql::RowSource::read(c);
    table_ = source.table;
    query_ = source.query;
    cursor_column_ = source.cursor_column;
    cursor_json_ = source.cursor_json;
    for (const std::string &col : c.strings("json_columns")) json_columns_.insert(col);
}

void SqliteExtractor::start() {
    db_ = std::make_unique<Database>(path_, true);
    std::string sql = query_;
    if (sql.empty()) {
        sql = "SELECT * FROM " + quote_identifier(table_);
        if (!cursor_column_.empty())
            sql += " WHERE (:cursor IS NULL OR " + quote_identifier(cursor_column_) + " > :cursor) ORDER BY " +
                   quote_identifier(cursor_column_);
    }
    statement_.emplace(db_->prepare(sql));
    sqlite3_stmt *st = statement_->raw();
    if (int p = sqlite3_bind_parameter_index(st, ":cursor"); p > 0 && !cursor_json_.empty())
        bind_json(st, p, bj::parse(cursor_json_));
    if (!cursor_column_.empty()) {
        for (int i = 0; i < sqlite3_column_count(st); ++i)
            if (cursor_column_ == sqlite3_column_name(st, i)) cursor_index_ = i;
        if (cursor_index_ < 0) throw Error("cursor_column '" + cursor_column_ + "' is not a column of the result");
    }
    if (!cursor_json_.empty()) host_.info("reading rows after " + cursor_column_ + " = " + cursor_json_);
}

void SqliteExtractor::stop() {
    statement_.reset();
    db_.reset();
}

void SqliteExtractor::append_row(std::string &json) {
    sqlite3_stmt *st = statement_->raw();
    json += '{';
    for (int i = 0, n = sqlite3_column_count(st); i < n; ++i) {
        if (i) json += ',';
        const char *name = sqlite3_column_name(st, i);
        json::append_string(json, name);
        json += ':';
        switch (sqlite3_column_type(st, i)) {
        case SQLITE_INTEGER: {
            int64_t v = sqlite3_column_int64(st, i);
            if (declared(st, i, "BOOL") && (v == 0 || v == 1)) {
                json += v ? "true" : "false";
            } else {
                char buf[24];
                auto r = std::to_chars(buf, buf + sizeof buf, v);
                json.append(buf, r.ptr);
            }
            break;
        }
        case SQLITE_FLOAT: append_double(json, sqlite3_column_double(st, i)); break;
        case SQLITE_TEXT: {
            std::string_view text(reinterpret_cast<const char *>(sqlite3_column_text(st, i)),
                                  size_t(sqlite3_column_bytes(st, i)));
            if (json_columns_.count(name) || declared(st, i, "JSON")) {
                boost::system::error_code ec;
                bj::value v = bj::parse(text, ec);
                if (!ec) {
                    json += writer_.write(v);
                    break;
                }
            }
            json::append_string(json, text);
            break;
        }
        case SQLITE_BLOB: {
            const auto *p = static_cast<const unsigned char *>(sqlite3_column_blob(st, i));
            json::append_string(json, base64(p, size_t(sqlite3_column_bytes(st, i))));
            break;
        }
        default: json += "null";
        }
    }
    json += '}';
}

bool SqliteExtractor::pull(Emitter &out, uint32_t max_records) {
    if (done_) return true;
    sqlite3_stmt *st = statement_->raw();
    for (uint32_t n = 0; n < max_records; ++n) {
        int rc = statement_->step();
        if (rc == SQLITE_DONE) {
            done_ = true;
            return true;
        }
        if (rc != SQLITE_ROW) throw Error(path_ + ": " + db_->error());
        row_.clear();
        append_row(row_);
        out.emit_new(row_);
        if (cursor_index_ >= 0) {
            // The cursor as JSON, for the saved position.
            switch (sqlite3_column_type(st, cursor_index_)) {
            case SQLITE_INTEGER: cursor_json_ = std::to_string(sqlite3_column_int64(st, cursor_index_)); break;
            case SQLITE_FLOAT: cursor_json_.clear(); append_double(cursor_json_, sqlite3_column_double(st, cursor_index_)); break;
            case SQLITE_TEXT:
                cursor_json_.clear();
                json::append_string(cursor_json_, reinterpret_cast<const char *>(sqlite3_column_text(st, cursor_index_)));
                break;
            default: break; // NULL cursors do not move it
            }
        }
    }
    return false;
}

std::string SqliteExtractor::checkpoint() const {
    if (cursor_column_.empty() || cursor_json_.empty()) return {};
    return json::PositionWriter().raw("cursor", cursor_json_).text();
}

void SqliteExtractor::restore(std::string_view position) {
    if (cursor_column_.empty()) return; // not incremental: every run reads everything
    json::SavedPosition saved(position);
    const bj::value *cursor = saved.find("cursor");
    if (!cursor || !(cursor->is_number() || cursor->is_string())) saved.fail("no \"cursor\" (a number or a string)");
    cursor_json_ = bj::serialize(*cursor);
}

} // namespace sluice::plugins::sqlite
