#include "sqlite_loader.hpp"

#include <algorithm>
#include <filesystem>

namespace sluice::plugins::sqlite {

namespace bj = boost::json;

SqliteLoader::SqliteLoader(const Context &ctx) : host_(ctx.host), marker_key_(std::string(ctx.stage_id)) {
    json::Config c(ctx.config_json);
    path_ = ctx.resolve_path(c.required_string("path"));
    target_ = sql::TableTarget::read(c, /*types_required=*/false);
    const std::string older = c.string("synchronous");
    full_sync_ = (older.empty() ? c.string("durability") : older) == "full";
}

void SqliteLoader::start() {
    namespace fs = std::filesystem;
    if (fs::path dir = fs::path(path_).parent_path(); !dir.empty() && !fs::exists(dir)) {
        std::error_code ec;
        fs::create_directories(dir, ec);
        if (ec) throw Error("cannot create directory " + dir.string() + ": " + ec.message());
        host_.warn("created the missing directory " + dir.string());
    }
    db_ = std::make_unique<Database>(path_, false);
    db_->exec("PRAGMA journal_mode=WAL");
    db_->exec(full_sync_ ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL");
    {
        // Said as SQLite reads it back (1 NORMAL, 2 FULL).
        Statement sync = db_->prepare("PRAGMA synchronous");
        const int level = sync.step() == SQLITE_ROW ? sqlite3_column_int(sync.raw(), 0) : -1;
        host_.debug(std::string("durability ") + (full_sync_ ? "full" : "normal") + ": PRAGMA synchronous is " +
                    (level == 2 ? "FULL" : level == 1 ? "NORMAL" : std::to_string(level)));
    }
    const std::string table = quote_identifier(target_.table);
    if (target_.create) db_->exec(target_.create_sql(table));
    // The table's columns: what may be written.
    std::vector<std::string> existing;
    {
        Statement info = db_->prepare("SELECT name FROM pragma_table_info(?)");
        sqlite3_bind_text(info.raw(), 1, target_.table.c_str(), -1, SQLITE_TRANSIENT);
        while (info.step() == SQLITE_ROW) existing.emplace_back(reinterpret_cast<const char *>(sqlite3_column_text(info.raw(), 0)));
    }
    if (existing.empty())
        throw Error("table '" + target_.table + "' does not exist in " + path_ +
                    " (set create_table and columns to create it)");
    target_.match_columns(existing);
    std::string values;
    for (size_t i = 0; i < target_.columns.size(); ++i) values += i ? ", ?" : "?";
    std::string sql = "INSERT INTO " + table + " (" + target_.column_list() + ") VALUES (" + values + ")" +
                      target_.upsert_clause();
    insert_.emplace(db_->prepare(sql));
}

void SqliteLoader::stop() {
    insert_.reset();
    set_marker_.reset();
    db_.reset();
}

void SqliteLoader::create_marker_table() {
    db_->exec("CREATE TABLE IF NOT EXISTS sluice_markers (sink TEXT PRIMARY KEY, marker TEXT NOT NULL)");
    marker_key_ = target_.table + "/" + marker_key_;
    set_marker_.emplace(db_->prepare("INSERT INTO sluice_markers (sink, marker) VALUES (?, ?) "
                                     "ON CONFLICT (sink) DO UPDATE SET marker = excluded.marker"));
}

std::string SqliteLoader::recover() {
    create_marker_table();
    Statement get = db_->prepare("SELECT marker FROM sluice_markers WHERE sink = ?");
    sqlite3_bind_text(get.raw(), 1, marker_key_.data(), int(marker_key_.size()), SQLITE_TRANSIENT);
    if (get.step() != SQLITE_ROW) return {};
    return reinterpret_cast<const char *>(sqlite3_column_text(get.raw(), 0));
}

void SqliteLoader::write(Input in, Emitter &out, const std::string_view *marker) {
    sqlite3_stmt *st = insert_->raw();
    db_->exec("BEGIN IMMEDIATE");
    std::string error;
    int64_t written = 0, refused = 0;
    for (uint32_t i = 0; i < in.size(); ++i) {
        bj::object *record = in[i].is_json() ? parser_.parse_object(in[i].payload(), error) : nullptr;
        if (!record) {
            out.fail(i, "sqlite: " + (in[i].is_json() ? error : "the record is not JSON"));
            ++refused;
            continue;
        }
        insert_->reset();
        size_t matched = 0;
        for (size_t c = 0; c < target_.columns.size(); ++c) {
            const int p = int(c) + 1;
            const bj::value *v = record->if_contains(target_.columns[c].name);
            if (!v) {
                sqlite3_bind_null(st, p);
                continue;
            }
            ++matched;
            switch (v->kind()) {
            case bj::kind::int64: sqlite3_bind_int64(st, p, v->get_int64()); break;
            case bj::kind::uint64: sqlite3_bind_double(st, p, double(v->get_uint64())); break;
            case bj::kind::double_: sqlite3_bind_double(st, p, v->get_double()); break;
            case bj::kind::bool_: sqlite3_bind_int(st, p, v->get_bool() ? 1 : 0); break;
            case bj::kind::string:
                sqlite3_bind_text(st, p, v->get_string().data(), int(v->get_string().size()), SQLITE_TRANSIENT);
                break;
            case bj::kind::null: sqlite3_bind_null(st, p); break;
            default: { // objects and arrays as JSON text
                std::string_view text = writer_.write(*v);
                sqlite3_bind_text(st, p, text.data(), int(text.size()), SQLITE_TRANSIENT);
            }
            }
        }
        if (record->size() > matched) ++extra_fields_;
        // A refused row (constraint, type) is undone alone; the rest of the
        // batch goes on in the same transaction. Any other failure is the
        // database's (disk full, I/O error): the whole batch is undone and
        // tried again later, never skipped record by record.
        if (int rc = insert_->step(); rc != SQLITE_DONE) {
            if (!is_row_error(rc)) {
                std::string message = "sqlite: " + path_ + ": " + db_->error();
                insert_->reset();
                roll_back();
                throw EnvironmentError(message);
            }
            out.fail(i, "sqlite: " + db_->error());
            ++refused;
            continue;
        }
        ++written;
    }
    insert_->reset();
    if (marker && set_marker_) {
        // The marker says which records this transaction holds: both or neither.
        set_marker_->reset();
        sqlite3_bind_text(set_marker_->raw(), 1, marker_key_.data(), int(marker_key_.size()), SQLITE_TRANSIENT);
        sqlite3_bind_text(set_marker_->raw(), 2, marker->data(), int(marker->size()), SQLITE_TRANSIENT);
        if (int rc = set_marker_->step(); rc != SQLITE_DONE) {
            std::string message = "sqlite: " + path_ + ": cannot store the delivery marker: " + db_->error();
            set_marker_->reset();
            roll_back();
            throw EnvironmentError(message);
        }
        set_marker_->reset();
    }
    try {
        db_->exec("COMMIT");
    } catch (...) {
        roll_back();
        throw;
    }
    written_ += written;
    refused_ += refused;
}

void SqliteLoader::roll_back() {
    // SQLite may already have rolled back by itself (disk full, I/O error).
    if (!sqlite3_get_autocommit(db_->raw())) sqlite3_exec(db_->raw(), "ROLLBACK", nullptr, nullptr, nullptr);
}

void SqliteLoader::flush(Emitter &) {
    host_.counter("rows_written", written_);
    host_.counter("rows_refused", refused_);
    if (extra_fields_) host_.counter("records_with_fields_not_in_table", extra_fields_);
}

} // namespace sluice::plugins::sqlite
