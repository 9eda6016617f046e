// Small text helpers the per-format readers of the file extractor share.
#pragma once

#include <algorithm>
#include <string_view>

namespace sluice::plugins {

// Only spaces, tabs and carriage returns: a blank line, skipped.
inline bool is_blank(std::string_view s) {
    for (char c : s)
        if (c != ' ' && c != '\t' && c != '\r') return false;
    return true;
}

inline size_t count_newlines(std::string_view s) { return size_t(std::count(s.begin(), s.end(), '\n')); }

} // namespace sluice::plugins
