#include "error_policy.hpp"

#include <sluice/backoff.hpp>

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
    return backoff_delay(policy.backoff, policy.max_backoff, attempt);
}

} // namespace sluice
