#include "destination_rows.hpp"

#include <gtest/gtest.h>
#include <sqlite3.h>

namespace sluice::test {

std::map<int64_t, int> sqlite_ids(const std::string &path) {
    std::map<int64_t, int> counts;
    sqlite3 *db = nullptr;
    EXPECT_EQ(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr), SQLITE_OK);
    sqlite3_stmt *st = nullptr;
    EXPECT_EQ(sqlite3_prepare_v2(db, "SELECT id FROM items", -1, &st, nullptr), SQLITE_OK);
    while (sqlite3_step(st) == SQLITE_ROW) counts[sqlite3_column_int64(st, 0)]++;
    sqlite3_finalize(st);
    sqlite3_close(db);
    return counts;
}

std::map<int64_t, int> postgres_ids(const PostgresServer &pg) {
    std::map<int64_t, int> counts;
    // One scalar: the ids as a comma-separated list.
    const std::string ids = pg.scalar("SELECT coalesce(string_agg(id::text, ','), '') FROM items");
    size_t at = 0;
    while (at < ids.size()) {
        size_t end = ids.find(',', at);
        if (end == std::string::npos) end = ids.size();
        counts[std::stoll(ids.substr(at, end - at))]++;
        at = end + 1;
    }
    return counts;
}

} // namespace sluice::test
