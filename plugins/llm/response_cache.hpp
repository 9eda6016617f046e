// Answers kept in SQLite, keyed by a SHA-256 of (model, messages,
// parameters), so that a rerun on the same input asks the model nothing.
// Thread-safe. Writes are buffered and committed in one transaction by
// commit() (once per batch), so the I/O thread never waits on the disk.
#pragma once

#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

struct sqlite3;

namespace sluice::plugins::llm {

struct CachedAnswer {
    std::string content; // the validated reply
    int64_t prompt_tokens = 0, completion_tokens = 0;
};

class ResponseCache {
public:
    // Opens (creating) the database. Throws std::runtime_error naming the file.
    explicit ResponseCache(const std::string &path);
    ~ResponseCache();
    ResponseCache(const ResponseCache &) = delete;
    ResponseCache &operator=(const ResponseCache &) = delete;

    static std::string key_of(const std::string &canonical_request); // hex SHA-256

    std::optional<CachedAnswer> find(const std::string &key);
    void put(const std::string &key, const std::string &model, const CachedAnswer &answer);
    // Writes what put() buffered. Throws std::runtime_error on failure.
    void commit();

private:
    struct Pending {
        std::string key, model;
        CachedAnswer answer;
    };
    std::string path_;
    sqlite3 *db_ = nullptr;
    std::mutex mutex_;
    std::vector<Pending> pending_;
};

} // namespace sluice::plugins::llm
