// sluice/utc_time.hpp - time stamps as the host and the bundled plugins write
// them: ISO 8601 in UTC to the second, "2026-01-31T23:59:59Z".
// Header-only, C++20.
#pragma once

#include <chrono>
#include <ctime>
#include <string>

namespace sluice {

inline std::string utc_time(std::chrono::system_clock::time_point t) {
    const std::time_t tt = std::chrono::system_clock::to_time_t(t);
    std::tm tm{};
    gmtime_r(&tt, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

inline std::string utc_now() { return utc_time(std::chrono::system_clock::now()); }

} // namespace sluice
