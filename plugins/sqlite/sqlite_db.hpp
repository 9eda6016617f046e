// A thin RAII layer over the SQLite C API: a connection, prepared
// statements, and errors as sluice::Error with the database's message, or
// sluice::EnvironmentError when the database itself failed (disk full, I/O
// error, read-only, locked), which is never the fault of a record.
#pragma once

#include <sluice/plugin.hpp>

#include <sqlite3.h>

#include <string>
#include <string_view>

namespace sluice::plugins::sqlite {

class Statement;

class Database {
public:
    // Opens `path` (read-only or read-write, creating it). Throws Error.
    Database(const std::string &path, bool read_only);
    ~Database();
    Database(const Database &) = delete;
    Database &operator=(const Database &) = delete;

    // Throws EnvironmentError when the database failed, Error otherwise.
    void exec(const std::string &sql);
    Statement prepare(const std::string &sql);
    std::string error() const { return sqlite3_errmsg(db_); }
    sqlite3 *raw() const { return db_; }
    const std::string &path() const { return path_; }

private:
    std::string path_;
    sqlite3 *db_ = nullptr;
};

class Statement {
public:
    Statement(sqlite3_stmt *st, const Database &db) : st_(st), db_(&db) {}
    ~Statement() { sqlite3_finalize(st_); }
    Statement(Statement &&o) noexcept : st_(o.st_), db_(o.db_) { o.st_ = nullptr; }
    Statement &operator=(Statement &&o) noexcept {
        std::swap(st_, o.st_);
        db_ = o.db_;
        return *this;
    }
    Statement(const Statement &) = delete;
    Statement &operator=(const Statement &) = delete;

    sqlite3_stmt *raw() const { return st_; }
    // SQLITE_ROW, SQLITE_DONE, or an error code (message in the database).
    int step() { return sqlite3_step(st_); }
    void reset() {
        sqlite3_reset(st_);
        sqlite3_clear_bindings(st_);
    }

private:
    sqlite3_stmt *st_;
    const Database *db_;
};

// Whether a statement's result code (extended codes on) is about the row it
// was given (a constraint, a type, a value too big) rather than about the
// database: only those may fail one record.
bool is_row_error(int code);

// A name quoted as an SQL identifier: "my ""table""".
std::string quote_identifier(std::string_view name);

} // namespace sluice::plugins::sqlite
