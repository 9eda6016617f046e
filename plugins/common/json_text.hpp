// Small helpers shared by the bundled plugins for writing JSON text by hand
// (faster than building a DOM when a plugin produces records from scratch).
#pragma once

#include <sluice/json.hpp>

#include <charconv>
#include <cstdint>
#include <string>
#include <string_view>

namespace sluice::plugins {

// Appends `s` as an escaped JSON string literal (with quotes).
inline void append_json_string(std::string &out, std::string_view s) { json::append_string(out, s); }

// True when `s` is a JSON number literal as RFC 8259 defines it (so it can
// be written unquoted).
inline bool is_json_number(std::string_view s) {
    size_t i = 0, n = s.size();
    if (i < n && s[i] == '-') ++i;
    if (i >= n) return false;
    if (s[i] == '0') ++i;
    else if (s[i] >= '1' && s[i] <= '9') while (i < n && s[i] >= '0' && s[i] <= '9') ++i;
    else return false;
    if (i < n && s[i] == '.') {
        ++i;
        size_t d = i;
        while (i < n && s[i] >= '0' && s[i] <= '9') ++i;
        if (i == d) return false;
    }
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        ++i;
        if (i < n && (s[i] == '+' || s[i] == '-')) ++i;
        size_t d = i;
        while (i < n && s[i] >= '0' && s[i] <= '9') ++i;
        if (i == d) return false;
    }
    return i == n;
}

inline void append_uint(std::string &out, uint64_t v) {
    char buf[24];
    auto r = std::to_chars(buf, buf + sizeof buf, v);
    out.append(buf, r.ptr);
}

} // namespace sluice::plugins
