// Transformer "map": renames, copies, defaults, casts, sets and drops
// top-level fields of JSON records, in that fixed order.
#include "../common/json_fields.hpp"

#include <sluice/config_spec.hpp>
#include <sluice/json.hpp>
#include <sluice/plugin.hpp>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace sluice::plugins {

namespace bj = boost::json;

namespace {

enum class CastType { string, integer, floating, boolean };

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}

std::string describe(const bj::value &v) {
    json::RecordWriter writer;
    std::string s(writer.write(v));
    return s.size() > 40 ? s.substr(0, 37) + "..." : s;
}

// Casts `v` in place; returns an error message on failure.
// Casts `v`; `source` is its text as the record had it (empty if it was
// set by an earlier step), so a number cast to a string reads as written.
std::optional<std::string> cast(bj::value &v, CastType type, std::string_view source) {
    if (v.is_null()) return std::nullopt; // null stays null whatever the type
    // 1e400 parses as infinity, which no JSON number can say.
    if (v.is_double() && !std::isfinite(v.get_double()) && type != CastType::string)
        return std::string(source.empty() ? "the number" : source.substr(0, 40)) + " is out of the range of a double";
    switch (type) {
    case CastType::string:
        if (v.is_string()) return std::nullopt;
        if (v.is_bool()) v = v.get_bool() ? "true" : "false";
        else if (v.is_number() && !source.empty()) v = bj::string(source, v.storage());
        else v = bj::string(bj::serialize(v), v.storage());
        return std::nullopt;
    case CastType::integer: {
        if (v.is_int64() || v.is_uint64()) return std::nullopt;
        if (v.is_bool()) {
            v = int64_t(v.get_bool() ? 1 : 0);
            return std::nullopt;
        }
        if (v.is_double()) {
            double d = v.get_double();
            if (std::fabs(d) > 9.2e18)
                return std::string(source.empty() ? describe(v) : source.substr(0, 40)) + " does not fit a 64-bit integer";
            if (std::trunc(d) != d) return describe(v) + " is not a whole number";
            v = int64_t(d);
            return std::nullopt;
        }
        if (v.is_string()) {
            std::string_view s = trim(v.get_string());
            int64_t n = 0;
            auto r = std::from_chars(s.data(), s.data() + s.size(), n);
            if (s.empty() || r.ec != std::errc() || r.ptr != s.data() + s.size())
                return describe(v) + " is not an integer";
            v = n;
            return std::nullopt;
        }
        return describe(v) + " cannot be cast to int";
    }
    case CastType::floating: {
        if (v.is_double()) return std::nullopt;
        if (v.is_int64()) {
            v = double(v.get_int64());
            return std::nullopt;
        }
        if (v.is_uint64()) {
            v = double(v.get_uint64());
            return std::nullopt;
        }
        if (v.is_bool()) {
            v = v.get_bool() ? 1.0 : 0.0;
            return std::nullopt;
        }
        if (v.is_string()) {
            std::string_view s = trim(v.get_string());
            double d = 0;
            auto r = std::from_chars(s.data(), s.data() + s.size(), d);
            if (s.empty() || r.ec != std::errc() || r.ptr != s.data() + s.size() || !std::isfinite(d))
                return describe(v) + " is not a number";
            v = d;
            return std::nullopt;
        }
        return describe(v) + " cannot be cast to float";
    }
    case CastType::boolean: {
        if (v.is_bool()) return std::nullopt;
        if (v.is_int64() || v.is_uint64()) {
            int64_t n = v.is_int64() ? v.get_int64() : int64_t(v.get_uint64() > 1 ? 2 : v.get_uint64());
            if (n != 0 && n != 1) return describe(v) + " is not 0 or 1";
            v = n == 1;
            return std::nullopt;
        }
        if (v.is_string()) {
            std::string s(trim(v.get_string()));
            for (char &c : s) c = char(std::tolower(static_cast<unsigned char>(c)));
            if (s == "true" || s == "yes" || s == "y" || s == "1" || s == "on") v = true;
            else if (s == "false" || s == "no" || s == "n" || s == "0" || s == "off") v = false;
            else return describe(v) + " is not a boolean (true/false, yes/no, 1/0, on/off)";
            return std::nullopt;
        }
        return describe(v) + " cannot be cast to bool";
    }
    }
    return std::nullopt;
}

} // namespace

class Map {
public:
    static constexpr sluice_kind kind = SLUICE_KIND_TRANSFORMER;
    static constexpr const char *name = "map";
    static constexpr const char *version = "1.0.0";
    static constexpr const char *description =
        "Renames, copies, defaults, casts, sets and drops top-level fields of JSON records (in that order).";
    static config::Spec config_spec() {
        using config::Field;
        return {
            Field::map("rename", R"({"type": "string"})",
                       "{\"old\": \"new\"}: move a field to a new name; absent fields are skipped; a rename onto an "
                       "existing field replaces it"),
            Field::map("copy", R"({"type": "string"})", "{\"from\": \"to\"}: copy a value to another field"),
            Field::map("default", "", "{\"field\": value}: set a field that is missing or null"),
            Field::map("cast", R"({"type": "string", "enum": ["string", "int", "float", "bool"]})",
                       "{\"field\": \"int\"}: convert to string, int, float or bool; null stays null"),
            Field::map("set", "", "{\"field\": value}: set a field to a constant (any JSON value), replacing any value"),
            Field::strings("drop", "Fields to remove"),
            Field::choice("on_cast_error", {"fail", "null", "keep"},
                          "A failed cast sends the record to the error path (fail), sets the field to null, or keeps "
                          "the value (both counted in cast_errors_tolerated)")
                .default_to("fail"),
        };
    }

    explicit Map(const Context &ctx) : host_(ctx.host) {
        json::Config c(ctx.config_json);
        auto pairs = [&](const char *key) {
            std::vector<std::pair<std::string, std::string>> out;
            json::Config child = c.child(key);
            for (const auto &kv : child.object()) {
                if (!kv.value().is_string()) c.fail(std::string(key) + "." + std::string(kv.key()), "expected a string");
                out.emplace_back(std::string(kv.key()), std::string(kv.value().get_string()));
            }
            return out;
        };
        for (auto &[from, to] : pairs("rename")) rename_.emplace_back(Key(from), Key(to));
        for (auto &[from, to] : pairs("copy")) copy_.emplace_back(Key(from), Key(to));
        json::Config defaults = c.child("default"), sets = c.child("set");
        for (const auto &kv : defaults.object()) default_.emplace_back(Key(kv.key()), std::string(writer_.write(kv.value())));
        for (const auto &kv : sets.object()) set_.emplace_back(Key(kv.key()), std::string(writer_.write(kv.value())));
        for (const auto &[field, type] : pairs("cast")) {
            CastType t;
            if (type == "string") t = CastType::string;
            else if (type == "int") t = CastType::integer;
            else if (type == "float") t = CastType::floating;
            else if (type == "bool") t = CastType::boolean;
            else c.fail("cast." + field, "unknown type '" + type + "' (expected string, int, float or bool)");
            cast_.emplace_back(Key(field), t);
        }
        for (std::string &field : c.strings("drop")) drop_.emplace_back(std::move(field));
        std::string mode = c.string("on_cast_error");
        if (mode != "fail" && mode != "null" && mode != "keep") c.fail("on_cast_error", "expected fail, null or keep");
        on_cast_error_ = mode[0];
    }

    void process(Input in, Emitter &out) {
        std::string error;
        for (uint32_t i = 0; i < in.size(); ++i) {
            Record r = in[i];
            if (!fields_.read(r.payload(), error)) {
                out.fail(i, "map: " + error);
                continue;
            }
            std::optional<std::string> failure;
            bool changed = edit(failure);
            if (failure) out.fail(i, *failure);
            else if (changed) out.replace(0, i, r.raw(), write());
            else out.forward(i); // unchanged records travel on by reference
        }
        if (cast_errors_) {
            host_.counter("cast_errors_tolerated", int64_t(cast_errors_));
            cast_errors_ = 0;
        }
    }

private:
    // A field of the record being edited: its key, the key's text as
    // written (escapes kept, no quotes) and the value's text. Texts point
    // into the record, the config, or scratch_ (written values).
    struct Member {
        std::string_view key, key_text, value;
        uint32_t scratch_at = kNotScratch, scratch_size = 0;
        bool renamed = false;
    };
    static constexpr uint32_t kNotScratch = UINT32_MAX;
    // A config key ready to be written: the name and its escaped text.
    struct Key {
        std::string name, text;
        explicit Key(std::string n) : name(std::move(n)) {
            json::append_string(text, name);
            text = text.substr(1, text.size() - 2);
        }
    };

    // Applies rename, copy, default, cast, set and drop to members_ (from
    // fields_); true when the record changed. Values are decoded only for
    // casts; everything else moves text.
    bool edit(std::optional<std::string> &failure) {
        members_.clear();
        scratch_.clear();
        // Built in place: a temporary copied in stalls on store forwarding.
        members_.resize(fields_.fields().size());
        for (size_t k = 0; k < members_.size(); ++k) {
            const JsonField &f = fields_.fields()[k];
            Member &m = members_[k];
            m.key = f.key;
            m.key_text = f.raw_key;
            m.value = f.text;
            m.scratch_at = kNotScratch;
            m.renamed = false;
        }
        bool changed = false;
        for (const auto &[from, to] : rename_)
            for (Member &m : members_)
                if (m.key == from.name) {
                    m.key = to.name;
                    m.key_text = to.text;
                    m.renamed = changed = true;
                }
        collapse_duplicates();
        for (const auto &[from, to] : copy_)
            if (const Member *m = member(from.name)) {
                Member copy = *m;
                put(to, copy);
                changed = true;
            }
        for (const auto &[field, text] : default_) {
            const Member *m = member(field.name);
            if (!m || text_of(*m) == "null") {
                put(field, Member{{}, {}, text});
                changed = true;
            }
        }
        for (const auto &[field, type] : cast_) {
            Member *m = member(field.name);
            if (!m || text_of(*m) == "null") continue;
            std::string_view source = text_of(*m);
            const bj::value *parsed = values_.value(source);
            if (!parsed) { // a nested value read() only delimited
                failure = "cast " + field.name + ": the value is not valid JSON";
                return true;
            }
            bj::value v = *parsed; // a copy to cast
            if (has_type(v, type) && !(v.is_double() && !std::isfinite(v.get_double()))) continue;
            changed = true;
            auto err = cast(v, type, source);
            if (!err) {
                set_scratch(*m, writer_.write(v));
                continue;
            }
            if (on_cast_error_ == 'f') {
                failure = "cast " + field.name + ": " + *err;
                return true;
            }
            if (on_cast_error_ == 'n') set_scratch(*m, "null");
            // keep: the value, and so its text, stays as it was
            ++cast_errors_;
        }
        for (const auto &[field, text] : set_) {
            put(field, Member{{}, {}, text});
            changed = true;
        }
        for (const Key &field : drop_)
            for (size_t k = 0; k < members_.size(); ++k)
                if (members_[k].key == field.name) {
                    members_.erase(members_.begin() + std::ptrdiff_t(k)); // keeps the others in order
                    changed = true;
                    break;
                }
        return changed;
    }

    // One member per key, as a parser keeps them: at the first one's place,
    // the last one's value, a renamed field winning over one that was there.
    void collapse_duplicates() {
        for (size_t a = 0; a < members_.size(); ++a)
            for (size_t b = a + 1; b < members_.size();) {
                const std::string_view x = members_[a].key, y = members_[b].key;
                if (x.size() != y.size() || (!x.empty() && x[0] != y[0]) || x != y) {
                    ++b;
                    continue;
                }
                if (members_[b].renamed || !members_[a].renamed) {
                    members_[a].value = members_[b].value;
                    members_[a].key_text = members_[b].key_text;
                    members_[a].renamed = members_[b].renamed;
                }
                members_.erase(members_.begin() + std::ptrdiff_t(b));
            }
    }
    Member *member(std::string_view key) {
        for (Member &m : members_)
            if (m.key == key) return &m;
        return nullptr;
    }
    // Sets `key` to `value`'s text: in place if present, else at the end.
    void put(const Key &key, const Member &value) {
        Member *m = member(key.name);
        if (!m) {
            members_.push_back(Member{key.name, key.text, {}});
            m = &members_.back();
        }
        m->value = value.value;
        m->scratch_at = value.scratch_at;
        m->scratch_size = value.scratch_size;
    }
    void set_scratch(Member &m, std::string_view text) {
        m.scratch_at = uint32_t(scratch_.size());
        m.scratch_size = uint32_t(text.size());
        scratch_.append(text);
    }
    std::string_view text_of(const Member &m) const {
        return m.scratch_at == kNotScratch ? m.value : std::string_view(scratch_).substr(m.scratch_at, m.scratch_size);
    }
    // The record as text: sized first, then copied in (no growth checks
    // per piece).
    std::string_view write() {
        size_t size = 2 + (members_.empty() ? 0 : members_.size() - 1);
        for (const Member &m : members_) size += m.key_text.size() + 3 + text_of(m).size();
        text_.resize(size);
        char *p = text_.data();
        *p++ = '{';
        for (size_t k = 0; k < members_.size(); ++k) {
            if (k) *p++ = ',';
            *p++ = '"';
            std::memcpy(p, members_[k].key_text.data(), members_[k].key_text.size());
            p += members_[k].key_text.size();
            *p++ = '"';
            *p++ = ':';
            std::string_view value = text_of(members_[k]);
            std::memcpy(p, value.data(), value.size());
            p += value.size();
        }
        *p++ = '}';
        return text_;
    }

    static bool has_type(const bj::value &v, CastType t) {
        switch (t) {
        case CastType::string: return v.is_string();
        case CastType::integer: return v.is_int64() || v.is_uint64();
        case CastType::floating: return v.is_double();
        case CastType::boolean: return v.is_bool();
        }
        return false;
    }

    std::vector<std::pair<Key, Key>> rename_, copy_;
    std::vector<std::pair<Key, std::string>> default_, set_; // values as JSON text
    std::vector<std::pair<Key, CastType>> cast_;
    std::vector<Key> drop_;
    char on_cast_error_ = 'f';
    uint64_t cast_errors_ = 0;
    Host host_;
    JsonFields fields_;
    JsonValueReader values_;
    json::RecordWriter writer_;
    std::vector<Member> members_;
    std::string scratch_, text_;
};

} // namespace sluice::plugins

SLUICE_PLUGIN(sluice::plugins::Map)
