#include "sqlite_db.hpp"

namespace sluice::plugins::sqlite {

Database::Database(const std::string &path, bool read_only) : path_(path) {
    int flags = (read_only ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE) | SQLITE_OPEN_NOMUTEX;
    if (sqlite3_open_v2(path.c_str(), &db_, flags, nullptr) != SQLITE_OK) {
        std::string m = db_ ? sqlite3_errmsg(db_) : "out of memory";
        sqlite3_close(db_);
        db_ = nullptr;
        throw Error("cannot open database " + path + ": " + m);
    }
    sqlite3_busy_timeout(db_, 10000); // other writers: wait rather than fail
    sqlite3_extended_result_codes(db_, 1);
}

Database::~Database() { sqlite3_close_v2(db_); }

void Database::exec(const std::string &sql) {
    char *err = nullptr;
    if (int rc = sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err); rc != SQLITE_OK) {
        std::string m = path_ + ": " + (err ? err : sqlite3_errmsg(db_));
        sqlite3_free(err);
        if (is_row_error(rc) || (rc & 0xff) == SQLITE_ERROR) throw Error(m);
        throw EnvironmentError(m);
    }
}

Statement Database::prepare(const std::string &sql) {
    sqlite3_stmt *st = nullptr;
    if (sqlite3_prepare_v2(db_, sql.c_str(), int(sql.size()), &st, nullptr) != SQLITE_OK)
        throw Error(path_ + ": " + sqlite3_errmsg(db_) + " (in: " + sql + ")");
    return Statement(st, *this);
}

bool is_row_error(int code) {
    switch (code & 0xff) {
    case SQLITE_CONSTRAINT:
    case SQLITE_MISMATCH:
    case SQLITE_TOOBIG:
    case SQLITE_RANGE: return true;
    default: return false;
    }
}

std::string quote_identifier(std::string_view name) {
    std::string out = "\"";
    for (char c : name) {
        if (c == '"') out += '"';
        out += c;
    }
    return out + "\"";
}

} // namespace sluice::plugins::sqlite
