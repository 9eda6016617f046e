// sluice/json.hpp - optional JSON helpers for C++ plugins, on Boost.JSON.
//
// Link the plugin with Boost::json. Nothing here is part of the ABI; it only
// makes the common case (JSON records, JSON config) short and fast:
//   - RecordParser parses payloads into reusable memory (no allocation per
//     record once warm),
//   - RecordWriter serialises into a reused buffer,
//   - Config reads the stage config with one-line errors naming the key.
#ifndef SLUICE_JSON_HPP
#define SLUICE_JSON_HPP

#include <sluice/plugin.hpp>

#include <boost/json.hpp>

#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sluice::json {

namespace bj = boost::json;

// Parses one JSON document at a time into memory that is reused by the next
// parse: the returned value is valid until then.
class RecordParser {
public:
    RecordParser() : resource_(initial_, sizeof initial_) {}
    RecordParser(const RecordParser &) = delete;
    RecordParser &operator=(const RecordParser &) = delete;

    // Returns the parsed value, or nullptr with `error` set to a short message.
    bj::value *parse(std::string_view text, std::string &error) {
        value_.reset();
        resource_.release();
        parser_.reset(bj::storage_ptr(&resource_));
        boost::system::error_code ec;
        parser_.write(text.data(), text.size(), ec);
        if (ec) {
            error = ec.message();
            parser_.reset();
            return nullptr;
        }
        // Move-constructed, so it stays in the reused memory (assigning it
        // to a value of the default storage would copy it to the heap).
        return &value_.emplace(parser_.release());
    }
    // Parses and requires an object (the usual shape of a JSON record).
    bj::object *parse_object(std::string_view text, std::string &error) {
        bj::value *v = parse(text, error);
        if (!v) return nullptr;
        if (!v->is_object()) {
            error = "payload is not a JSON object";
            return nullptr;
        }
        return &v->get_object();
    }

private:
    alignas(16) unsigned char initial_[16384];
    bj::monotonic_resource resource_;
    bj::parser parser_;
    std::optional<bj::value> value_;
};

// The index of the first byte of `s` that is not valid UTF-8 (RFC 3629: no
// overlong forms, no surrogates, nothing past U+10FFFF), or npos when all of
// it is. JSON text must be UTF-8: check untrusted bytes before they become
// part of a record.
inline size_t first_invalid_utf8(std::string_view s) {
    const auto *p = reinterpret_cast<const unsigned char *>(s.data());
    const size_t n = s.size();
    size_t i = 0;
    while (i < n) {
        // Eight ASCII bytes at a time: the common case.
        while (i + 8 <= n) {
            uint64_t w;
            std::memcpy(&w, p + i, 8);
            if (w & 0x8080808080808080ull) break;
            i += 8;
        }
        if (i >= n) break;
        const unsigned char c = p[i];
        if (c < 0x80) {
            ++i;
            continue;
        }
        size_t len;
        unsigned char lo = 0x80, hi = 0xBF; // allowed range of the second byte
        if (c >= 0xC2 && c <= 0xDF) len = 2;
        else if (c >= 0xE0 && c <= 0xEF) {
            len = 3;
            if (c == 0xE0) lo = 0xA0;      // overlong
            else if (c == 0xED) hi = 0x9F; // surrogates
        } else if (c >= 0xF0 && c <= 0xF4) {
            len = 4;
            if (c == 0xF0) lo = 0x90;      // overlong
            else if (c == 0xF4) hi = 0x8F; // past U+10FFFF
        } else {
            return i;
        }
        if (i + len > n || p[i + 1] < lo || p[i + 1] > hi) return i;
        for (size_t k = 2; k < len; ++k)
            if ((p[i + k] & 0xC0) != 0x80) return i;
        i += len;
    }
    return std::string_view::npos;
}

// Appends `s` as a JSON string literal (with quotes), escaped as RFC 8259
// requires. Bytes >= 0x80 pass through: the text is taken as UTF-8 (check
// untrusted text with first_invalid_utf8, or use append_string_lossy).
inline void append_string(std::string &out, std::string_view s) {
    static const char hex[] = "0123456789abcdef";
    out += '"';
    size_t run = 0;
    for (size_t i = 0; i < s.size(); ++i) {
        unsigned char c = static_cast<unsigned char>(s[i]);
        if (c >= 0x20 && c != '"' && c != '\\') continue;
        out.append(s.data() + run, i - run);
        run = i + 1;
        switch (c) {
        case '"': out += "\\\""; break;
        case '\\': out += "\\\\"; break;
        case '\n': out += "\\n"; break;
        case '\r': out += "\\r"; break;
        case '\t': out += "\\t"; break;
        case '\b': out += "\\b"; break;
        case '\f': out += "\\f"; break;
        default:
            out += "\\u00";
            out += hex[c >> 4];
            out += hex[c & 15];
        }
    }
    out.append(s.data() + run, s.size() - run);
    out += '"';
}

// Like append_string, but every byte that is not valid UTF-8 becomes U+FFFD,
// so the result is valid JSON whatever `s` holds: for messages, attributes
// and excerpts of bad input.
inline void append_string_lossy(std::string &out, std::string_view s) {
    size_t bad = first_invalid_utf8(s);
    if (bad == std::string_view::npos) {
        append_string(out, s);
        return;
    }
    std::string clean;
    clean.reserve(s.size() + 8);
    while (bad != std::string_view::npos) {
        clean.append(s.substr(0, bad));
        clean += "\xEF\xBF\xBD";
        s.remove_prefix(bad + 1);
        bad = first_invalid_utf8(s);
    }
    clean.append(s);
    append_string(out, clean);
}

// Serialises values into one reused buffer. Numbers are written the way
// people and other tools write them (19.99, not Boost's 1.999E1): the
// shortest text that reads back to the same double.
class RecordWriter {
public:
    // The returned view is valid until the next call.
    std::string_view write(const bj::value &v) {
        out_.clear();
        append(v);
        return out_;
    }
    std::string_view write(const bj::object &o) {
        out_.clear();
        append(o);
        return out_;
    }

private:
    void append(const bj::object &o) {
        out_ += '{';
        bool first = true;
        for (const auto &kv : o) {
            if (!first) out_ += ',';
            first = false;
            append_string(out_, kv.key());
            out_ += ':';
            append(kv.value());
        }
        out_ += '}';
    }
    void append(const bj::value &v) {
        char buf[32];
        switch (v.kind()) {
        case bj::kind::null: out_ += "null"; return;
        case bj::kind::bool_: out_ += v.get_bool() ? "true" : "false"; return;
        case bj::kind::int64: {
            auto r = std::to_chars(buf, buf + sizeof buf, v.get_int64());
            out_.append(buf, r.ptr);
            return;
        }
        case bj::kind::uint64: {
            auto r = std::to_chars(buf, buf + sizeof buf, v.get_uint64());
            out_.append(buf, r.ptr);
            return;
        }
        case bj::kind::double_: {
            double d = v.get_double();
            if (!std::isfinite(d)) {
                out_ += "null"; // JSON has no NaN or infinity
                return;
            }
            auto r = std::to_chars(buf, buf + sizeof buf, d);
            out_.append(buf, r.ptr);
            return;
        }
        case bj::kind::string: append_string(out_, v.get_string()); return;
        case bj::kind::array: {
            out_ += '[';
            bool first = true;
            for (const auto &e : v.get_array()) {
                if (!first) out_ += ',';
                first = false;
                append(e);
            }
            out_ += ']';
            return;
        }
        case bj::kind::object: append(v.get_object()); return;
        }
    }

    std::string out_;
};

// A read-only view of a stage config object. Errors read
// "<key>: <what is wrong>" ("rules[2].regex: ...") and are thrown as
// sluice::Error; the host puts "FILE: /stages/N/config: " in front.
class Config {
public:
    explicit Config(std::string_view json_text) {
        boost::system::error_code ec;
        value_ = bj::parse(json_text, ec);
        if (ec) throw Error("config: not valid JSON: " + ec.message());
        if (!value_.is_object()) throw Error("config: expected a JSON object");
    }
    Config(bj::object obj, std::string prefix) : value_(std::move(obj)), prefix_(std::move(prefix)) {}

    const bj::object &object() const { return value_.get_object(); }
    bool has(std::string_view key) const { return object().contains(key); }
    const bj::value *find(std::string_view key) const { return object().if_contains(key); }

    std::string string(std::string_view key, std::string def = {}) const {
        const bj::value *v = find(key);
        if (!v || v->is_null()) return def;
        if (!v->is_string()) fail(key, "expected a string");
        return std::string(v->get_string());
    }
    std::string required_string(std::string_view key) const {
        const bj::value *v = find(key);
        if (!v || !v->is_string() || v->get_string().empty())
            fail(key, "required: expected a non-empty string");
        return std::string(v->get_string());
    }
    // The getters below without a default are for fields whose config spec
    // (sluice/config_spec.hpp) declares a default or marks them required:
    // those are always present. Absent, they throw "<key>: missing".
    int64_t integer(std::string_view key) const {
        if (!find(key)) fail(key, "missing");
        return integer(key, 0);
    }
    double number(std::string_view key) const {
        if (!find(key)) fail(key, "missing");
        return number(key, 0);
    }
    bool boolean(std::string_view key) const {
        if (!find(key)) fail(key, "missing");
        return boolean(key, false);
    }
    int64_t integer(std::string_view key, int64_t def) const {
        const bj::value *v = find(key);
        if (!v || v->is_null()) return def;
        if (v->is_int64()) return v->get_int64();
        if (v->is_uint64() && v->get_uint64() <= INT64_MAX) return static_cast<int64_t>(v->get_uint64());
        fail(key, "expected an integer");
    }
    double number(std::string_view key, double def) const {
        const bj::value *v = find(key);
        if (!v || v->is_null()) return def;
        if (v->is_double()) return v->get_double();
        if (v->is_int64()) return static_cast<double>(v->get_int64());
        if (v->is_uint64()) return static_cast<double>(v->get_uint64());
        fail(key, "expected a number");
    }
    bool boolean(std::string_view key, bool def) const {
        const bj::value *v = find(key);
        if (!v || v->is_null()) return def;
        if (!v->is_bool()) fail(key, "expected true or false");
        return v->get_bool();
    }
    std::vector<std::string> strings(std::string_view key) const {
        std::vector<std::string> out;
        const bj::value *v = find(key);
        if (!v || v->is_null()) return out;
        if (v->is_string()) {
            out.emplace_back(v->get_string());
            return out;
        }
        if (!v->is_array()) fail(key, "expected an array of strings");
        for (const bj::value &e : v->get_array()) {
            if (!e.is_string()) fail(key, "expected an array of strings");
            out.emplace_back(e.get_string());
        }
        return out;
    }
    // A nested object, empty when absent.
    Config child(std::string_view key) const {
        const bj::value *v = find(key);
        if (!v || v->is_null()) return Config(bj::object(), path(key) + ".");
        if (!v->is_object()) fail(key, "expected an object");
        return Config(v->get_object(), path(key) + ".");
    }
    std::string path(std::string_view key) const {
        return prefix_ + std::string(key);
    }
    [[noreturn]] void fail(std::string_view key, std::string_view what) const {
        throw Error(path(key) + ": " + std::string(what));
    }

private:
    bj::value value_;
    std::string prefix_;
};

// Writes a checkpoint position as a JSON object that SavedPosition reads
// back, fields in the order given:
//   return json::PositionWriter().string("file", key).count("offset", n).text();
class PositionWriter {
public:
    PositionWriter &string(std::string_view key, std::string_view value) {
        field(key);
        append_string(out_, value);
        return *this;
    }
    PositionWriter &count(std::string_view key, uint64_t value) {
        field(key);
        out_ += std::to_string(value);
        return *this;
    }
    PositionWriter &flag(std::string_view key, bool value) {
        field(key);
        out_ += value ? "true" : "false";
        return *this;
    }
    // A value already in JSON (a cursor kept as its JSON text).
    PositionWriter &raw(std::string_view key, std::string_view json_value) {
        field(key);
        out_ += json_value;
        return *this;
    }
    std::string text() const { return out_ + "}"; }

private:
    void field(std::string_view key) {
        out_ += out_.size() > 1 ? "," : "";
        append_string(out_, key);
        out_ += ':';
    }
    std::string out_ = "{";
};

// The JSON Schema name of a value's type: null, boolean, integer, number,
// string, array or object (a whole number is "integer").
inline std::string_view type_name(const bj::value &v) {
    switch (v.kind()) {
    case bj::kind::null: return "null";
    case bj::kind::bool_: return "boolean";
    case bj::kind::int64:
    case bj::kind::uint64: return "integer";
    case bj::kind::double_: return "number";
    case bj::kind::string: return "string";
    case bj::kind::array: return "array";
    case bj::kind::object: return "object";
    }
    return "unknown";
}

// A number of any JSON number kind as a double.
inline double as_double(const bj::value &v) {
    if (v.is_int64()) return double(v.get_int64());
    if (v.is_uint64()) return double(v.get_uint64());
    return v.get_double();
}

// A position this plugin once returned from checkpoint() as a JSON object,
// read back in restore(). Anything unexpected throws Error("saved position
// TEXT is not one this extractor wrote: WHY"), which stops the run rather
// than reading from the start.
class SavedPosition {
public:
    explicit SavedPosition(std::string_view text) : text_(text) {
        boost::system::error_code ec;
        bj::value v = bj::parse(text, ec);
        if (ec || !v.is_object()) fail("expected a JSON object");
        object_ = std::move(v.get_object());
    }
    [[noreturn]] void fail(std::string_view why) const {
        throw Error("saved position " + text_ + " is not one this extractor wrote: " + std::string(why));
    }
    const std::string &text() const { return text_; }
    const bj::value *find(std::string_view key) const { return object_.if_contains(key); }
    std::string required_string(std::string_view key) const {
        const bj::value *v = find(key);
        if (!v || !v->is_string()) fail("no \"" + std::string(key) + "\"");
        return std::string(v->get_string());
    }
    // A non-negative integer, `def` when absent.
    uint64_t count(std::string_view key, uint64_t def = 0) const {
        const bj::value *v = find(key);
        if (!v) return def;
        if (v->is_uint64()) return v->get_uint64();
        if (v->is_int64() && v->get_int64() >= 0) return uint64_t(v->get_int64());
        fail("\"" + std::string(key) + "\" is not a count");
    }
    bool flag(std::string_view key) const {
        const bj::value *v = find(key);
        return v && v->is_bool() && v->get_bool();
    }

private:
    std::string text_;
    bj::object object_;
};

} // namespace sluice::json

#endif // SLUICE_JSON_HPP
