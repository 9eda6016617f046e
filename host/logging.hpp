// Logging setup: spdlog to stderr, one line per event.
#pragma once

#include <optional>
#include <string>

namespace sluice {

// Accepts trace, debug, info, warn, error, off. Returns false for others.
bool setup_logging(const std::string &level);
std::optional<std::string> log_level_names_if_invalid(const std::string &level);

} // namespace sluice
