// Transformer "map": renames, copies, defaults, casts, sets and drops
// top-level fields of JSON records, in that fixed order.
#include "../common/json_members.hpp"

#include <sluice/config_spec.hpp>
#include <sluice/json.hpp>
#include <sluice/plugin.hpp>

#include <algorithm>
#include <deque>
#include <charconv>
#include <cmath>
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
        rename_ = pairs("rename");
        copy_ = pairs("copy");
        json::Config defaults = c.child("default"), sets = c.child("set");
        for (const auto &kv : defaults.object()) default_.emplace_back(std::string(kv.key()), kv.value());
        for (const auto &kv : sets.object()) set_.emplace_back(std::string(kv.key()), kv.value());
        for (const auto &[field, type] : pairs("cast")) {
            CastType t;
            if (type == "string") t = CastType::string;
            else if (type == "int") t = CastType::integer;
            else if (type == "float") t = CastType::floating;
            else if (type == "bool") t = CastType::boolean;
            else c.fail("cast." + field, "unknown type '" + type + "' (expected string, int, float or bool)");
            cast_.emplace_back(field, t);
        }
        drop_ = c.strings("drop");
        std::string mode = c.string("on_cast_error");
        if (mode != "fail" && mode != "null" && mode != "keep") c.fail("on_cast_error", "expected fail, null or keep");
        on_cast_error_ = mode[0];
    }

    void process(Input in, Emitter &out) {
        std::string error;
        for (uint32_t i = 0; i < in.size(); ++i) {
            Record r = in[i];
            bj::object *obj = parser_.parse_object(r.payload(), error);
            if (!obj) {
                out.fail(i, "map: " + error);
                continue;
            }
            bool changed = false;
            std::optional<std::string> failure;
            // The source text of each field's value: what is not changed is
            // written back as it was (numbers keep -0, 1e-400, 1.50).
            read_source_text(r.payload());
            if (!rename_.empty() && needs_rename(*obj)) {
                *obj = renamed(std::move(*obj));
                // Renamed texts move with their fields; a field a rename
                // lands on loses its own.
                renamed_.assign(source_.size(), false);
                for (size_t k = 0; k < source_.size(); ++k)
                    if (const std::string *to = new_name(source_[k].first)) {
                        source_[k].first = *to;
                        renamed_[k] = true;
                    }
                for (size_t k = source_.size(); k-- > 0;) {
                    if (renamed_[k]) continue;
                    for (size_t j = 0; j < source_.size(); ++j)
                        if (renamed_[j] && source_[j].first == source_[k].first) {
                            source_.erase(source_.begin() + std::ptrdiff_t(k));
                            break;
                        }
                }
                hint_ = 0;
                changed = true;
            }
            for (const auto &[from, to] : copy_) {
                if (const bj::value *v = obj->if_contains(from)) {
                    bj::value copy = *v;
                    (*obj)[to] = std::move(copy);
                    const std::string_view *text = source_of(from);
                    std::optional<std::string_view> kept = text ? std::optional(*text) : std::nullopt;
                    forget_source(to);
                    if (kept) source_.emplace_back(std::string_view(to), *kept);
                    changed = true;
                }
            }
            for (const auto &[field, value] : default_) {
                const bj::value *v = obj->if_contains(field);
                if (!v || v->is_null()) {
                    (*obj)[field] = value;
                    forget_source(field);
                    changed = true;
                }
            }
            for (const auto &[field, type] : cast_) {
                bj::value *v = obj->if_contains(field);
                if (!v || v->is_null() || (has_type(*v, type) && !(v->is_double() && !std::isfinite(v->get_double()))))
                    continue;
                const std::string_view *source = source_of(field);
                const std::string_view text = source ? *source : std::string_view();
                auto err = cast(*v, type, text);
                changed = true;
                if (!err) {
                    forget_source(field);
                    continue;
                }
                if (on_cast_error_ == 'f') {
                    failure = "cast " + field + ": " + *err;
                    break;
                }
                if (on_cast_error_ == 'n') {
                    *v = nullptr;
                    forget_source(field);
                } // keep: the value, and so its text, stays as it was
                ++cast_errors_;
            }
            if (failure) {
                out.fail(i, *failure);
                continue;
            }
            for (const auto &[field, value] : set_) {
                (*obj)[field] = value;
                forget_source(field);
                changed = true;
            }
            for (const auto &field : drop_) {
                auto it = obj->find(field);
                if (it == obj->end()) continue;
                obj->stable_erase(it); // keep the other fields in order
                changed = true;
            }
            // Unchanged records travel on by reference, not re-serialised.
            if (changed) out.replace(0, i, r.raw(), write(*obj));
            else out.forward(i);
        }
        if (cast_errors_) {
            host_.counter("cast_errors_tolerated", int64_t(cast_errors_));
            cast_errors_ = 0;
        }
    }

private:
    // Keys (escapes undone) and value texts of the record's members; a key
    // that appears twice keeps no text (which of them the parser kept is
    // its business).
    // Keys point into the payload (or the config, once renamed); only a key
    // written with escapes is decoded, into unescaped_: no allocation per
    // record in the common case.
    void read_source_text(std::string_view payload) {
        source_.clear();
        unescaped_.clear();
        hint_ = 0;
        if (!split_members(payload, members_)) return;
        for (const RawMember &m : members_) {
            std::string_view key = m.key;
            if (key.find('\\') != std::string_view::npos) {
                boost::system::error_code ec;
                bj::value k = bj::parse("\"" + std::string(key) + "\"", ec);
                if (ec || !k.is_string()) continue;
                unescaped_.emplace_back(k.get_string());
                key = unescaped_.back();
            }
            if (source_of(key)) {
                forget_source(key);
                continue;
            }
            source_.emplace_back(key, m.value);
        }
    }
    // Fields are mostly looked up in the record's order: the search starts
    // after the last one found.
    const std::string_view *source_of(std::string_view key) const {
        const size_t n = source_.size();
        for (size_t k = 0; k < n; ++k) {
            size_t at = hint_ + k < n ? hint_ + k : hint_ + k - n;
            if (source_[at].first == key) {
                hint_ = at + 1 < n ? at + 1 : 0;
                return &source_[at].second;
            }
        }
        return nullptr;
    }
    void forget_source(std::string_view key) {
        hint_ = 0;
        for (auto it = source_.begin(); it != source_.end(); ++it)
            if (it->first == key) {
                source_.erase(it);
                return;
            }
    }
    // The record: unchanged values as their source text, the rest written.
    std::string_view write(const bj::object &obj) {
        text_.clear();
        text_ += '{';
        bool first = true;
        for (const auto &kv : obj) {
            if (!first) text_ += ',';
            first = false;
            json::append_string(text_, kv.key());
            text_ += ':';
            if (const std::string_view *source = source_of(kv.key())) text_.append(*source);
            else text_.append(writer_.write(kv.value()));
        }
        text_ += '}';
        return text_;
    }

    bool needs_rename(const bj::object &obj) const {
        for (const auto &[from, to] : rename_)
            if (obj.contains(from)) return true;
        return false;
    }
    const std::string *new_name(std::string_view key) const {
        for (const auto &[from, to] : rename_)
            if (from == key) return &to;
        return nullptr;
    }
    // A copy of `obj` with renamed keys in their original places (an object
    // cannot change a key in place). A rename onto an existing field wins.
    bj::object renamed(bj::object obj) const {
        bj::object out(obj.storage());
        out.reserve(obj.size());
        for (auto &kv : obj) {
            const std::string *to = new_name(kv.key());
            if (!to && out.contains(kv.key())) continue; // overwritten by a rename
            bj::string_view key = to ? bj::string_view(to->data(), to->size()) : kv.key();
            out.insert_or_assign(key, std::move(kv.value()));
        }
        return out;
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

    std::vector<std::pair<std::string, std::string>> rename_, copy_;
    std::vector<std::pair<std::string, bj::value>> default_, set_;
    std::vector<std::pair<std::string, CastType>> cast_;
    std::vector<std::string> drop_;
    char on_cast_error_ = 'f';
    uint64_t cast_errors_ = 0;
    Host host_;
    json::RecordParser parser_;
    json::RecordWriter writer_;
    std::vector<RawMember> members_;
    std::vector<std::pair<std::string_view, std::string_view>> source_;
    std::vector<bool> renamed_;
    mutable size_t hint_ = 0;
    std::deque<std::string> unescaped_;
    std::string text_;
};

} // namespace sluice::plugins

SLUICE_PLUGIN(sluice::plugins::Map)
