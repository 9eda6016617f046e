// What a test's destination table holds: each id of table `items` (column
// `id`) with how many rows have it, read from an SQLite file or a
// PostgreSQL server, for the checks that no record was lost or doubled.
#pragma once

#include "postgres_server.hpp"

#include <cstdint>
#include <map>
#include <string>

namespace sluice::test {

std::map<int64_t, int> sqlite_ids(const std::string &path);
std::map<int64_t, int> postgres_ids(const PostgresServer &pg);

} // namespace sluice::test
