// Logging setup: spdlog to stderr, one line per event, as text or as JSON
// objects for log shippers (--log-format json).
#pragma once

#include <map>
#include <optional>
#include <string>

namespace sluice {

// Accepts levels trace, debug, info, warn, error, off and formats "text" and
// "json". Returns false for others.
bool setup_logging(const std::string &level, const std::string &format = "text");
std::optional<std::string> log_level_names_if_invalid(const std::string &level);

// JSON logs name each line's stage and its plugin: the stage ids of the
// pipeline and their plugins.
void set_log_stage_plugins(std::map<std::string, std::string> stage_plugins);

// A line being redrawn in place at the bottom of the terminal (the progress
// line): log lines clear it first, and it is drawn again after them.
void set_progress_line_shown(bool shown);

// One JSON log line (no newline) from a message as the host writes it: a
// leading "[stage] " becomes "stage" (and its "plugin"), the first
// "record N" becomes "record". Public for tests.
std::string json_log_line(const std::string &time, const std::string &level, const std::string &message);

} // namespace sluice
