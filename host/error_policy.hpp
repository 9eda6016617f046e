// What a stage does with records it could not process (a plugin's fail(), a
// failed batch, an exception, unreadable input): retry them with backoff,
// then skip them (count and log), send them to a dead-letter stage, or stop
// the pipeline.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace sluice {

struct ErrorPolicy {
    enum class Then { skip, dead_letter, fail };
    uint32_t max_attempts = 1; // tries in all, the first included
    std::chrono::milliseconds backoff{100};
    std::chrono::milliseconds max_backoff{5000};
    Then then = Then::skip;
    std::string dead_letter; // stage id, with Then::dead_letter
    size_t dead_letter_index = 0;
};

std::string_view then_name(ErrorPolicy::Then then);

// The wait before attempt `attempt` (1 = the first retry): doubling from
// `backoff` up to `max_backoff`, with up to 50% random jitter so that many
// workers do not retry in step.
std::chrono::milliseconds retry_delay(const ErrorPolicy &policy, uint32_t attempt);

} // namespace sluice
