#include "error_policy.hpp"

#include <algorithm>
#include <random>

namespace sluice {

std::string_view then_name(ErrorPolicy::Then then) {
    switch (then) {
    case ErrorPolicy::Then::skip: return "skip";
    case ErrorPolicy::Then::dead_letter: return "dead_letter";
    case ErrorPolicy::Then::fail: return "fail";
    }
    return "skip";
}

std::chrono::milliseconds retry_delay(const ErrorPolicy &policy, uint32_t attempt) {
    thread_local std::minstd_rand rng{std::random_device{}()};
    int64_t d = policy.backoff.count();
    for (uint32_t i = 1; i < attempt && d < policy.max_backoff.count(); ++i) d *= 2;
    d = std::min<int64_t>(d, policy.max_backoff.count());
    std::uniform_int_distribution<int64_t> jitter(0, d / 2);
    return std::chrono::milliseconds(d + jitter(rng));
}

} // namespace sluice
