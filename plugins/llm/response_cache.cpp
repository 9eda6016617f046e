#include "response_cache.hpp"

#include <openssl/evp.h>
#include <sqlite3.h>

#include <ctime>
#include <filesystem>
#include <stdexcept>

namespace sluice::plugins::llm {

namespace {

void exec(sqlite3 *db, const char *sql, const std::string &path) {
    char *err = nullptr;
    if (sqlite3_exec(db, sql, nullptr, nullptr, &err) != SQLITE_OK) {
        std::string m = err ? err : "unknown error";
        sqlite3_free(err);
        throw std::runtime_error("cache " + path + ": " + m);
    }
}

} // namespace

ResponseCache::ResponseCache(const std::string &path) : path_(path) {
    std::error_code ec;
    if (auto dir = std::filesystem::path(path).parent_path(); !dir.empty()) std::filesystem::create_directories(dir, ec);
    if (sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                        nullptr) != SQLITE_OK) {
        std::string m = db_ ? sqlite3_errmsg(db_) : "out of memory";
        sqlite3_close(db_);
        db_ = nullptr;
        throw std::runtime_error("cache " + path + ": cannot open: " + m);
    }
    sqlite3_busy_timeout(db_, 5000);
    try {
        exec(db_, "PRAGMA journal_mode=WAL", path_);
        exec(db_, "PRAGMA synchronous=NORMAL", path_);
        exec(db_,
             "CREATE TABLE IF NOT EXISTS llm_cache (key TEXT PRIMARY KEY, model TEXT NOT NULL, content TEXT NOT NULL,"
             " prompt_tokens INTEGER NOT NULL, completion_tokens INTEGER NOT NULL, created_at INTEGER NOT NULL)",
             path_);
    } catch (...) {
        sqlite3_close(db_);
        db_ = nullptr;
        throw;
    }
}

ResponseCache::~ResponseCache() {
    try {
        commit();
    } catch (...) {
        // Losing cached answers costs a request next time, nothing more.
    }
    sqlite3_close(db_);
}

std::string ResponseCache::key_of(const std::string &canonical_request) {
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    EVP_Digest(canonical_request.data(), canonical_request.size(), digest, &len, EVP_sha256(), nullptr);
    static const char *hex = "0123456789abcdef";
    std::string out;
    for (unsigned int i = 0; i < len; ++i) {
        out += hex[digest[i] >> 4];
        out += hex[digest[i] & 15];
    }
    return out;
}

std::optional<CachedAnswer> ResponseCache::find(const std::string &key) {
    std::lock_guard lock(mutex_);
    for (const Pending &p : pending_)
        if (p.key == key) return p.answer;
    sqlite3_stmt *st = nullptr;
    if (sqlite3_prepare_v2(db_, "SELECT content, prompt_tokens, completion_tokens FROM llm_cache WHERE key = ?", -1, &st,
                           nullptr) != SQLITE_OK)
        return std::nullopt;
    sqlite3_bind_text(st, 1, key.data(), int(key.size()), SQLITE_TRANSIENT);
    std::optional<CachedAnswer> out;
    if (sqlite3_step(st) == SQLITE_ROW) {
        CachedAnswer a;
        a.content.assign(reinterpret_cast<const char *>(sqlite3_column_text(st, 0)), size_t(sqlite3_column_bytes(st, 0)));
        a.prompt_tokens = sqlite3_column_int64(st, 1);
        a.completion_tokens = sqlite3_column_int64(st, 2);
        out = std::move(a);
    }
    sqlite3_finalize(st);
    return out;
}

void ResponseCache::put(const std::string &key, const std::string &model, const CachedAnswer &answer) {
    std::lock_guard lock(mutex_);
    pending_.push_back({key, model, answer});
}

void ResponseCache::commit() {
    std::lock_guard lock(mutex_);
    if (pending_.empty()) return;
    exec(db_, "BEGIN", path_);
    sqlite3_stmt *st = nullptr;
    if (sqlite3_prepare_v2(db_,
                           "INSERT OR REPLACE INTO llm_cache (key, model, content, prompt_tokens, completion_tokens,"
                           " created_at) VALUES (?, ?, ?, ?, ?, ?)",
                           -1, &st, nullptr) != SQLITE_OK) {
        std::string m = sqlite3_errmsg(db_);
        sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
        throw std::runtime_error("cache " + path_ + ": " + m);
    }
    for (const Pending &p : pending_) {
        sqlite3_reset(st);
        sqlite3_bind_text(st, 1, p.key.data(), int(p.key.size()), SQLITE_TRANSIENT);
        sqlite3_bind_text(st, 2, p.model.data(), int(p.model.size()), SQLITE_TRANSIENT);
        sqlite3_bind_text(st, 3, p.answer.content.data(), int(p.answer.content.size()), SQLITE_TRANSIENT);
        sqlite3_bind_int64(st, 4, p.answer.prompt_tokens);
        sqlite3_bind_int64(st, 5, p.answer.completion_tokens);
        sqlite3_bind_int64(st, 6, int64_t(std::time(nullptr)));
        if (sqlite3_step(st) != SQLITE_DONE) {
            std::string m = sqlite3_errmsg(db_);
            sqlite3_finalize(st);
            sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
            throw std::runtime_error("cache " + path_ + ": cannot store an answer: " + m);
        }
    }
    sqlite3_finalize(st);
    exec(db_, "COMMIT", path_);
    pending_.clear();
}

} // namespace sluice::plugins::llm
