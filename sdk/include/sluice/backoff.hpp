// sluice/backoff.hpp - the wait before trying again, for the host and for
// plugins alike: exponential backoff with jitter.
//
//   std::this_thread::sleep_for(sluice::backoff_delay(500ms, 30s, attempt));
//
// `attempt` 1 is the first retry: it waits `base`; each next one twice as
// long, up to `max`; plus a random part of up to half of that, so that many
// clients that failed together do not retry together. Header-only, C++20.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <random>

namespace sluice {

inline std::chrono::milliseconds backoff_delay(std::chrono::milliseconds base, std::chrono::milliseconds max,
                                               uint32_t attempt) {
    thread_local std::minstd_rand rng{std::random_device{}()};
    int64_t d = std::max<int64_t>(base.count(), 0);
    for (uint32_t i = 1; i < attempt && d < max.count(); ++i) d *= 2;
    d = std::min<int64_t>(d, max.count());
    std::uniform_int_distribution<int64_t> jitter(0, d / 2);
    return std::chrono::milliseconds(d + jitter(rng));
}

} // namespace sluice
