// Scanning JSON text as written: where a string or value ends, and the
// field of a number no double or 64-bit integer can hold, for an error that
// names it.
#pragma once

#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace sluice::plugins {

// Index just past the closing quote of the JSON string starting at p[0]
// (a quote), or 0 when the data ends first. memchr finds the quotes; one is
// escaped when an odd number of backslashes stands before it.
inline size_t json_string_end(const char *p, size_t n) {
    for (size_t i = 1; i < n;) {
        const void *q = std::memchr(p + i, '"', n - i);
        if (!q) return 0;
        size_t j = size_t(static_cast<const char *>(q) - p), slashes = 0;
        while (j - slashes > 1 && p[j - slashes - 1] == '\\') ++slashes;
        if (slashes % 2 == 0) return j + 1;
        i = j + 1;
    }
    return 0;
}

// Length of the JSON value at the start of [p, p+n): 0 when the data ends
// before the value does. Only finds the end; validation comes elsewhere.
inline size_t json_value_length(const char *p, size_t n) {
    if (n == 0) return 0;
    if (p[0] == '"') return json_string_end(p, n);
    if (p[0] == '{' || p[0] == '[') {
        int depth = 0;
        for (size_t i = 0; i < n; ++i) {
            char c = p[i];
            if (c == '"') {
                size_t len = json_string_end(p + i, n - i);
                if (len == 0) return 0;
                i += len - 1;
            } else if (c == '{' || c == '[') {
                ++depth;
            } else if (c == '}' || c == ']') {
                if (--depth == 0) return i + 1;
            }
        }
        return 0;
    }
    for (size_t i = 0; i < n; ++i)
        if (p[i] == ',' || p[i] == ']' || p[i] == '}' || p[i] == ' ' || p[i] == '\n' || p[i] == '\t' || p[i] == '\r')
            return i;
    return 0;
}

// Whether a JSON number literal fits a double (or, written as an integer,
// a 64-bit integer). Underflow (1e-400) counts as fitting: it reads as 0.
// Whether a JSON number's text is an integer a DOM holds as one: no
// fraction or exponent, within int64 (negative) or uint64.
inline bool is_whole_integer(std::string_view n) {
    if (n.find_first_of(".eE") != std::string_view::npos) return false;
    if (!n.empty() && n[0] == '-') {
        int64_t v;
        return std::from_chars(n.data(), n.data() + n.size(), v).ec == std::errc();
    }
    uint64_t v;
    return std::from_chars(n.data(), n.data() + n.size(), v).ec == std::errc();
}

inline bool number_fits(std::string_view n) {
    if (n.find_first_of(".eE") == std::string_view::npos) return is_whole_integer(n);
    std::string s(n);
    errno = 0;
    double d = std::strtod(s.c_str(), nullptr);
    return !(errno == ERANGE && (d == HUGE_VAL || d == -HUGE_VAL));
}

// The first number of a JSON document that does not fit, and the path of
// its field ("amount", "items[2].price"); nothing when every one fits.
inline std::optional<std::pair<std::string, std::string>> find_unrepresentable_number(std::string_view text) {
    struct Level {
        bool object;
        std::string key;
        size_t index = 0;
    };
    std::vector<Level> stack;
    auto path = [&] {
        std::string p;
        for (const Level &l : stack) {
            if (l.object) p += (p.empty() ? "" : ".") + l.key;
            else p += "[" + std::to_string(l.index) + "]";
        }
        return p;
    };
    bool expect_key = false;
    for (size_t i = 0; i < text.size();) {
        char c = text[i];
        if (c == '{' || c == '[') {
            stack.push_back(Level{c == '{', "", 0});
            expect_key = c == '{';
            ++i;
        } else if (c == '}' || c == ']') {
            if (!stack.empty()) stack.pop_back();
            expect_key = false;
            ++i;
        } else if (c == ',') {
            if (!stack.empty() && !stack.back().object) ++stack.back().index;
            expect_key = !stack.empty() && stack.back().object;
            ++i;
        } else if (c == '"') {
            size_t len = json_value_length(text.data() + i, text.size() - i);
            if (len < 2) return std::nullopt;
            if (expect_key && !stack.empty()) stack.back().key = std::string(text.substr(i + 1, len - 2));
            expect_key = false;
            i += len;
        } else if (c == '-' || (c >= '0' && c <= '9')) {
            size_t j = i;
            while (j < text.size() && (text[j] == '-' || text[j] == '+' || text[j] == '.' || text[j] == 'e' ||
                                       text[j] == 'E' || (text[j] >= '0' && text[j] <= '9')))
                ++j;
            std::string_view n = text.substr(i, j - i);
            if (!number_fits(n)) return std::make_pair(path(), std::string(n));
            i = j;
        } else {
            ++i;
        }
    }
    return std::nullopt;
}

} // namespace sluice::plugins
