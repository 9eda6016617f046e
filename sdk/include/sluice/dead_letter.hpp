// The dead-letter format: what the host writes when a stage's on_error policy
// sends a record to a dead-letter loader, and how a plugin reads it back to
// replay it (the file extractor's unwrap_dead_letters). One JSON object per
// failed record, always valid JSON whatever the record held:
//
//   {"record": <the record>, "record_id": 17, "stage": "clean", "plugin": "map",
//    "kind": "failed" | "unreadable" | "rejected", "error": "cast amount: ...",
//    "attempts": 1, "time": "2026-11-27T10:00:00Z",
//    "attributes": {"source": "in.csv", "source_line": "12"}}
//
// "record" is the record itself when it is JSON; a JSON string when it is
// text (or JSON that does not parse); and, when its bytes are not valid
// UTF-8, a base64 string with "record_base64": true beside it, so the exact
// bytes survive. Error and attribute texts have invalid UTF-8 replaced by
// U+FFFD.
#ifndef SLUICE_DEAD_LETTER_HPP
#define SLUICE_DEAD_LETTER_HPP

#include <sluice/json.hpp>
#include <sluice/utc_time.hpp>

#include <boost/json.hpp>

#include <cstdint>
#include <ctime>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace sluice::dead_letter {

inline void append_base64(std::string &out, std::string_view bytes) {
    static const char digits[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const auto *p = reinterpret_cast<const unsigned char *>(bytes.data());
    size_t i = 0, n = bytes.size();
    for (; i + 3 <= n; i += 3) {
        uint32_t v = uint32_t(p[i]) << 16 | uint32_t(p[i + 1]) << 8 | p[i + 2];
        out += digits[v >> 18];
        out += digits[(v >> 12) & 63];
        out += digits[(v >> 6) & 63];
        out += digits[v & 63];
    }
    if (i < n) {
        uint32_t v = uint32_t(p[i]) << 16 | (i + 1 < n ? uint32_t(p[i + 1]) << 8 : 0);
        out += digits[v >> 18];
        out += digits[(v >> 12) & 63];
        out += i + 1 < n ? digits[(v >> 6) & 63] : '=';
        out += '=';
    }
}

// The bytes of standard base64 text (padding optional), or nothing when it
// is not base64.
inline std::optional<std::string> decode_base64(std::string_view text) {
    auto value = [](char c) -> int {
        if (c >= 'A' && c <= 'Z') return c - 'A';
        if (c >= 'a' && c <= 'z') return c - 'a' + 26;
        if (c >= '0' && c <= '9') return c - '0' + 52;
        if (c == '+') return 62;
        if (c == '/') return 63;
        return -1;
    };
    while (!text.empty() && text.back() == '=') text.remove_suffix(1);
    if (text.size() % 4 == 1) return std::nullopt;
    std::string out;
    out.reserve(text.size() * 3 / 4);
    uint32_t acc = 0;
    int bits = 0;
    for (char c : text) {
        int v = value(c);
        if (v < 0) return std::nullopt;
        acc = acc << 6 | uint32_t(v);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out += char((acc >> bits) & 0xFF);
        }
    }
    return out;
}

struct Letter {
    std::string_view payload;
    bool payload_is_json = true; // the record's content type is JSON
    uint64_t record_id = 0;
    std::string_view stage, plugin, kind, error;
    uint32_t attempts = 1;
    std::vector<std::pair<std::string_view, std::string_view>> attributes;
};

inline std::string write(const Letter &l) {
    std::string out = "{\"record\":";
    bool embedded = false;
    if (l.payload_is_json) {
        boost::system::error_code ec;
        boost::json::parser p;
        p.write(l.payload.data(), l.payload.size(), ec);
        if (!ec) { // Boost.JSON refuses invalid UTF-8, so this is valid JSON
            out.append(l.payload);
            embedded = true;
        }
    }
    if (!embedded) {
        if (json::first_invalid_utf8(l.payload) == std::string_view::npos) {
            json::append_string(out, l.payload);
        } else {
            out += '"';
            append_base64(out, l.payload);
            out += "\",\"record_base64\":true";
        }
    }
    out += ",\"record_id\":" + std::to_string(l.record_id);
    out += ",\"stage\":";
    json::append_string_lossy(out, l.stage);
    out += ",\"plugin\":";
    json::append_string_lossy(out, l.plugin);
    out += ",\"kind\":";
    json::append_string_lossy(out, l.kind);
    out += ",\"error\":";
    json::append_string_lossy(out, l.error);
    out += ",\"attempts\":" + std::to_string(l.attempts);
    out += ",\"time\":\"";
    out += utc_now();
    out += "\",\"attributes\":{";
    bool first = true;
    for (const auto &[k, v] : l.attributes) {
        if (!first) out += ',';
        first = false;
        json::append_string_lossy(out, k);
        out += ':';
        json::append_string_lossy(out, v);
    }
    out += "}}";
    return out;
}

// A dead letter read back: the original record's bytes and what it said.
struct Read {
    std::string payload;   // the record as it was (decoded from base64 if need be)
    bool is_json = false;  // "record" held the record as JSON
    std::string error;     // why it failed then
    std::vector<std::pair<std::string, std::string>> attributes;
};

// Parses one dead letter; nothing (with `problem` set) when `text` is not one.
inline std::optional<Read> read(std::string_view text, std::string &problem) {
    boost::system::error_code ec;
    boost::json::value v = boost::json::parse(text, ec);
    if (ec || !v.is_object()) {
        problem = "not a dead letter: expected a JSON object";
        return std::nullopt;
    }
    const boost::json::object &o = v.get_object();
    const boost::json::value *record = o.if_contains("record");
    if (!record) {
        problem = "not a dead letter: no \"record\"";
        return std::nullopt;
    }
    Read r;
    const boost::json::value *b64 = o.if_contains("record_base64");
    if (b64 && b64->is_bool() && b64->get_bool()) {
        std::optional<std::string> bytes =
            record->is_string() ? decode_base64(record->get_string()) : std::nullopt;
        if (!bytes) {
            problem = "dead letter: \"record\" is not base64 although record_base64 says so";
            return std::nullopt;
        }
        r.payload = std::move(*bytes);
    } else if (record->is_string()) {
        r.payload = std::string(record->get_string());
    } else {
        r.payload = boost::json::serialize(*record);
        r.is_json = true;
    }
    if (const boost::json::value *e = o.if_contains("error"); e && e->is_string()) r.error = e->get_string();
    if (const boost::json::value *a = o.if_contains("attributes"); a && a->is_object())
        for (const auto &kv : a->get_object())
            if (kv.value().is_string()) r.attributes.emplace_back(kv.key(), kv.value().get_string());
    return r;
}

} // namespace sluice::dead_letter

#endif
