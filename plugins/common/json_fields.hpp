// The top-level fields of a JSON object record, read in one pass without a
// DOM (simdjson On-Demand): each field's key and the exact text of its value.
// Stages that read or edit a few fields (map, rules, route) use it instead of
// parsing the whole document into objects: values nobody asks about are never
// decoded, and their text can be copied on byte for byte (362.0, -0, 1e-400
// stay as written). After the first records it allocates nothing.
//
// What read() checks: one JSON object, well-formed members, nothing after it,
// valid UTF-8 and string escapes, top-level scalars that are real literals
// and numbers. Nested objects and arrays are only delimited (their insides
// are checked when a stage decodes them): JSON records are valid by the ABI's
// contract, since extractors validate what they read.
#pragma once

#include "json_members.hpp"
#include "json_text.hpp"

#include <sluice/json.hpp>

#include <simdjson.h>

#include <charconv>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sluice::plugins {

enum class JsonType : char { null, boolean, number, string, array, object };

// The type of a value from its text (which read() has checked).
inline JsonType json_type_of(std::string_view text) {
    switch (text.empty() ? 'n' : text[0]) {
    case '"': return JsonType::string;
    case '{': return JsonType::object;
    case '[': return JsonType::array;
    case 't':
    case 'f': return JsonType::boolean;
    case 'n': return JsonType::null;
    default: return JsonType::number;
    }
}

inline const char *json_type_name(JsonType t) {
    switch (t) {
    case JsonType::null: return "null";
    case JsonType::boolean: return "boolean";
    case JsonType::number: return "number";
    case JsonType::string: return "string";
    case JsonType::array: return "array";
    case JsonType::object: return "object";
    }
    return "null";
}

struct JsonField {
    std::string_view key;     // escapes undone
    std::string_view raw_key; // as written between the quotes
    std::string_view text;    // the value as written, without surrounding blanks
    JsonType type() const { return json_type_of(text); }
};

// Whether the escapes of a JSON string's text (between its quotes) are valid.
inline bool valid_escapes(std::string_view s) {
    for (size_t i = s.find('\\'); i != std::string_view::npos; i = s.find('\\', i)) {
        if (i + 1 >= s.size()) return false;
        char c = s[i + 1];
        if (c == 'u') {
            if (i + 6 > s.size()) return false;
            for (size_t k = i + 2; k < i + 6; ++k)
                if (!std::isxdigit(static_cast<unsigned char>(s[k]))) return false;
            i += 6;
        } else if (std::strchr("\"\\/bfnrt", c) && c != '\0') {
            i += 2;
        } else {
            return false;
        }
    }
    return true;
}

class JsonFields {
public:
    // Reads `payload`'s top-level fields; false with `error` set when it is
    // not a JSON object. The views stay valid as long as `payload`'s bytes
    // (keys with escapes: until the next read).
    bool read(std::string_view payload, std::string &error) {
        fields_.clear();
        unescaped_.clear();
        escaped_keys_ = 0;
        // simdjson reads up to SIMDJSON_PADDING bytes past the end (what
        // they hold does not matter: an earlier record's bytes are fine).
        if (padded_.size() < payload.size() + simdjson::SIMDJSON_PADDING)
            padded_.resize(payload.size() + simdjson::SIMDJSON_PADDING);
        std::memcpy(padded_.data(), payload.data(), payload.size());
        const char *base = padded_.data();
        auto in_payload = [&](std::string_view v) { return std::string_view(payload.data() + (v.data() - base), v.size()); };

        namespace od = simdjson::ondemand;
        // Most records have no backslash at all: then no string needs its
        // escapes checked, and no key decoding (one scan, not one per string).
        const bool escapes = std::memchr(payload.data(), '\\', payload.size()) != nullptr;
        od::document doc;
        od::object object;
        auto err = parser_.iterate(base, payload.size(), padded_.size()).get(doc);
        if (!err) err = doc.get_object().get(object);
        if (err) return fail(error, err == simdjson::INCORRECT_TYPE ? "payload is not a JSON object" : nullptr, err);
        for (auto member : object) {
            od::field field;
            if ((err = std::move(member).get(field))) return fail(error, nullptr, err);
            const char *k = field.key().raw();
            std::string_view text;
            if ((err = raw_value(field.value(), text))) return fail(error, nullptr, err);
            // The key ends at the quote before the ':' before the value.
            const char *end = text.data();
            do --end;
            while (end > k && *end != ':');
            do --end;
            while (end > k && *end != '"');
            std::string_view raw_key(k, size_t(end - k));
            if (!valid_scalar(text, escapes)) {
                error = "invalid value of field '" + std::string(raw_key.substr(0, 64)) + "': " +
                        std::string(text.substr(0, 40));
                return false;
            }
            if (escapes && raw_key.find('\\') != std::string_view::npos) ++escaped_keys_;
            // From locals: reading back a view just stored stalls the store buffer.
            const std::string_view key = in_payload(raw_key), value = in_payload(text);
            JsonField &f = fields_.emplace_back();
            f.key = key;
            f.raw_key = key;
            f.text = value;
        }
        const char *after = nullptr;
        if (doc.current_location().get(after) != simdjson::OUT_OF_BOUNDS)
            return fail(error, "trailing content after the object", simdjson::TRAILING_CONTENT);
        if (escaped_keys_) unescape_keys();
        return true;
    }

    const std::vector<JsonField> &fields() const { return fields_; }
    std::vector<JsonField> &fields() { return fields_; }

    // The field named `key`; with duplicate keys the last (as parsers keep).
    const JsonField *find(std::string_view key) const {
        for (size_t i = fields_.size(); i-- > 0;)
            if (fields_[i].key == key) return &fields_[i];
        return nullptr;
    }

private:
    static simdjson::error_code raw_value(simdjson::ondemand::value v, std::string_view &text) {
        namespace od = simdjson::ondemand;
        od::json_type type;
        if (auto err = v.type().get(type)) return err;
        simdjson::error_code err = simdjson::SUCCESS;
        if (type == od::json_type::object) {
            od::object o;
            if (!(err = v.get_object().get(o))) err = o.raw_json().get(text);
        } else if (type == od::json_type::array) {
            od::array a;
            if (!(err = v.get_array().get(a))) err = a.raw_json().get(text);
        } else {
            text = v.raw_json_token();
        }
        if (err) return err;
        // Tokens run to the next one: the blanks after a value are not its own.
        while (!text.empty() && (text.back() == ' ' || text.back() == '\t' || text.back() == '\n' || text.back() == '\r'))
            text.remove_suffix(1);
        return simdjson::SUCCESS;
    }

    // A top-level scalar's text is a literal, a number or a string with
    // valid escapes (On-Demand only delimits tokens it is not asked to decode).
    static bool valid_scalar(std::string_view text, bool escapes) {
        switch (json_type_of(text)) {
        case JsonType::string: return text.size() >= 2 && (!escapes || valid_escapes(text.substr(1, text.size() - 2)));
        case JsonType::boolean: return text == "true" || text == "false";
        case JsonType::null: return text == "null";
        case JsonType::number: return is_json_number(text);
        default: return true;
        }
    }

    static bool fail(std::string &error, const char *what, simdjson::error_code err) {
        error = what ? what : std::string("invalid JSON: ") + simdjson::error_message(err);
        return false;
    }

    // Keys written with escapes get their decoded form (rare: one string
    // per such key, into storage reused from record to record).
    void unescape_keys() {
        unescaped_.reserve(size_t(escaped_keys_));
        for (JsonField &f : fields_) {
            if (f.raw_key.find('\\') == std::string_view::npos) continue;
            boost::system::error_code ec;
            boost::json::value k = boost::json::parse("\"" + std::string(f.raw_key) + "\"", ec);
            unescaped_.emplace_back(ec || !k.is_string() ? std::string(f.raw_key) : std::string(k.get_string()));
            f.key = unescaped_.back();
        }
    }

    simdjson::ondemand::parser parser_;
    std::vector<char> padded_;
    std::vector<JsonField> fields_;
    std::vector<std::string> unescaped_; // reserved first: views into it stay put
    int escaped_keys_ = 0;
};

// Decodes field values as far as a check needs them: numbers, strings
// (unescaped), and a DOM only for arrays, objects and comparisons with them.
class JsonValueReader {
public:
    JsonValueReader() : resource_(buffer_, sizeof buffer_) {}
    JsonValueReader(const JsonValueReader &) = delete;
    JsonValueReader &operator=(const JsonValueReader &) = delete;

    // A number's value as a double (1e400 is infinity, as a DOM would read it).
    static double number(std::string_view text) {
        double d = 0;
        auto r = std::from_chars(text.data(), text.data() + text.size(), d);
        if (r.ec == std::errc::result_out_of_range) {
            std::string s(text);
            d = std::strtod(s.c_str(), nullptr);
        }
        return d;
    }
    // A whole number, as JSON Schema's "integer" means it (3.0 is one).
    static bool is_integer(std::string_view text) {
        if (text.find_first_of(".eE") == std::string_view::npos) return true;
        double d = number(text);
        return std::isfinite(d) && std::trunc(d) == d;
    }
    // A string value's characters, escapes undone (valid until the next call).
    std::string_view string(std::string_view text) {
        std::string_view inner = text.substr(1, text.size() - 2);
        if (inner.find('\\') == std::string_view::npos) return inner;
        const boost::json::value *v = value(text);
        return v && v->is_string() ? std::string_view(v->get_string()) : inner;
    }
    // The value as a DOM (valid until the next call); nullptr when its text
    // is not valid JSON (read() delimits nested values without checking them).
    const boost::json::value *value(std::string_view text) {
        value_.reset();
        resource_.release();
        parser_.reset(boost::json::storage_ptr(&resource_));
        boost::system::error_code ec;
        parser_.write(text.data(), text.size(), ec);
        // Move-constructed: the value stays in resource_ (an assignment
        // would copy it to the heap).
        if (ec) return nullptr;
        return &value_.emplace(parser_.release());
    }
    // Whether the value written as `text` equals `other` (as boost::json
    // compares values: int and uint numerically, double only with double).
    bool equals(std::string_view text, const boost::json::value &other) {
        JsonType t = json_type_of(text);
        switch (other.kind()) {
        case boost::json::kind::string: return t == JsonType::string && string(text) == std::string_view(other.get_string());
        case boost::json::kind::bool_: return t == JsonType::boolean && (text[0] == 't') == other.get_bool();
        case boost::json::kind::null: return t == JsonType::null;
        default: break;
        }
        if (t == JsonType::string || t == JsonType::boolean || t == JsonType::null) return false;
        const boost::json::value *v = value(text);
        return v && *v == other;
    }

private:
    alignas(16) unsigned char buffer_[4096];
    boost::json::monotonic_resource resource_;
    boost::json::parser parser_;
    std::optional<boost::json::value> value_;
};

} // namespace sluice::plugins
