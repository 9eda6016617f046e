// Checks a JSON value against a JSON Schema subset, with one precise message
// per problem. The host checks every stage config with it; a plugin can check
// what it receives (an LLM's structured answer, say) the same way.
//
// Supported keywords: type (string, integer, number, boolean, object, array,
// null, or a list of them), properties, required, additionalProperties (true,
// false or a schema), items (one schema), enum, minimum, maximum, minLength
// and maxLength (in code points); a schema may be true or false. Checked in
// ctest against the JSON-Schema-Test-Suite (draft 7) for those keywords.
// Other keywords ("description", "default", "secret", "format") are ignored
// by the check; apply_defaults() below fills in "default" values.
#pragma once

#include <sluice/json.hpp>

#include <boost/json.hpp>

#include <cmath>
#include <string>
#include <string_view>
#include <vector>

namespace sluice::json {

namespace schema_detail {

namespace bj = boost::json;

inline bool is_type(const bj::value &v, std::string_view type) {
    if (type == "string") return v.is_string();
    if (type == "integer") {
        if (v.is_int64() || v.is_uint64()) return true;
        return v.is_double() && std::floor(v.get_double()) == v.get_double();
    }
    if (type == "number") return v.is_number();
    if (type == "boolean") return v.is_bool();
    if (type == "object") return v.is_object();
    if (type == "array") return v.is_array();
    if (type == "null") return v.is_null();
    return true; // an unknown type name accepts anything
}

inline std::string type_phrase(std::string_view type) {
    if (type == "string") return "a string";
    if (type == "integer") return "an integer";
    if (type == "number") return "a number";
    if (type == "boolean") return "true or false";
    if (type == "object") return "an object";
    if (type == "array") return "an array";
    if (type == "null") return "null";
    return std::string(type);
}

// Unicode code points in UTF-8 text (JSON Schema lengths count those, not bytes).
inline size_t code_points(std::string_view s) {
    size_t n = 0;
    for (unsigned char c : s) n += (c & 0xC0) != 0x80;
    return n;
}

inline void check(const bj::value &value, const bj::value &schema_value, const std::string &path,
                  std::vector<std::string> &out, bool closed) {
    // A boolean schema: true accepts anything, false nothing.
    if (schema_value.is_bool()) {
        if (!schema_value.get_bool()) out.push_back(path + ": no value is allowed here");
        return;
    }
    if (!schema_value.is_object()) return;
    const bj::object &schema = schema_value.get_object();

    if (const bj::value *t = schema.if_contains("type")) {
        bool ok = false;
        std::string expected;
        if (t->is_string()) {
            ok = is_type(value, t->get_string());
            expected = type_phrase(t->get_string());
        } else if (t->is_array()) {
            for (const bj::value &e : t->get_array()) {
                if (!e.is_string()) continue;
                ok = ok || is_type(value, e.get_string());
                expected += (expected.empty() ? "" : " or ") + type_phrase(e.get_string());
            }
        } else {
            ok = true;
        }
        if (!ok) {
            out.push_back(path + ": expected " + expected);
            return;
        }
    }
    if (const bj::value *e = schema.if_contains("enum"); e && e->is_array()) {
        bool found = false;
        std::string list;
        for (const bj::value &option : e->get_array()) {
            found = found || option == value;
            list += (list.empty() ? "" : ", ") + bj::serialize(option);
        }
        if (!found) {
            out.push_back(path + ": " + bj::serialize(value) + " is not one of " + list);
            return;
        }
    }
    if (value.is_number()) {
        if (const bj::value *m = schema.if_contains("minimum"); m && m->is_number() && as_double(value) < as_double(*m))
            out.push_back(path + ": must be at least " + bj::serialize(*m));
        if (const bj::value *m = schema.if_contains("maximum"); m && m->is_number() && as_double(value) > as_double(*m))
            out.push_back(path + ": must be at most " + bj::serialize(*m));
    }
    if (value.is_string()) {
        if (const bj::value *m = schema.if_contains("minLength");
            m && m->is_number() && double(code_points(value.get_string())) < as_double(*m))
            out.push_back(path + (as_double(*m) <= 1 ? std::string(": must not be empty")
                                                     : ": must be at least " + bj::serialize(*m) + " characters"));
        if (const bj::value *m = schema.if_contains("maxLength");
            m && m->is_number() && double(code_points(value.get_string())) > as_double(*m))
            out.push_back(path + ": must be at most " + bj::serialize(*m) + " characters");
    }
    if (value.is_array()) {
        if (const bj::value *items = schema.if_contains("items")) {
            const bj::array &arr = value.get_array();
            for (size_t i = 0; i < arr.size(); ++i) check(arr[i], *items, path + "/" + std::to_string(i), out, closed);
        }
    }
    if (value.is_object()) {
        const bj::object &obj = value.get_object();
        const bj::value *props = schema.if_contains("properties");
        const bj::object *properties = props && props->is_object() ? &props->get_object() : nullptr;
        const bj::value *additional = schema.if_contains("additionalProperties");
        if (const bj::value *req = schema.if_contains("required"); req && req->is_array()) {
            for (const bj::value &r : req->get_array())
                if (r.is_string() && !obj.contains(r.get_string()))
                    out.push_back(path + "/" + std::string(r.get_string()) + ": required key is missing");
        }
        for (const auto &kv : obj) {
            std::string child = path + "/" + std::string(kv.key());
            const bj::value *sub = properties ? properties->if_contains(kv.key()) : nullptr;
            if (sub) {
                check(kv.value(), *sub, child, out, closed);
            } else if (additional && additional->is_object()) {
                check(kv.value(), *additional, child, out, closed);
            } else if (additional ? additional->is_bool() && !additional->get_bool() : closed && properties) {
                std::string list;
                if (properties)
                    for (const auto &p : *properties) list += (list.empty() ? "" : ", ") + std::string(p.key());
                out.push_back(child + (list.empty() ? std::string(": unknown key (no keys are allowed here)")
                                                    : ": unknown key (expected one of: " + list + ")"));
            }
        }
    }
}

} // namespace schema_detail

// Problems with `value`, each "<path>: <what>" with `path` prefixed (e.g.
// "/stages/1/config/format"); empty when it conforms. `closed_objects`: an
// object schema with "properties" but no "additionalProperties" refuses
// other keys (right for configs, where a typo must not pass); otherwise it
// allows them, as JSON Schema does.
inline std::vector<std::string> check_schema(const boost::json::value &value, const boost::json::value &schema,
                                             const std::string &path = "", bool closed_objects = false) {
    std::vector<std::string> out;
    schema_detail::check(value, schema, path, out, closed_objects);
    return out;
}

// Fills in, in `value`, every absent member whose schema has a "default":
// in the object itself, in objects it holds (also ones just defaulted) and
// in the objects of arrays whose "items" declare properties. What is present
// is left as it is, so it may be applied twice.
inline void apply_defaults(boost::json::value &value, const boost::json::value &schema) {
    namespace bj = boost::json;
    if (!schema.is_object()) return;
    const bj::object &s = schema.get_object();
    if (value.is_array()) {
        if (const bj::value *items = s.if_contains("items"))
            for (bj::value &e : value.get_array()) apply_defaults(e, *items);
        return;
    }
    if (!value.is_object()) return;
    const bj::value *props = s.if_contains("properties");
    if (!props || !props->is_object()) return;
    bj::object &obj = value.get_object();
    for (const auto &kv : props->get_object()) {
        if (!kv.value().is_object()) continue;
        bj::value *present = obj.if_contains(kv.key());
        if (!present) {
            const bj::value *d = kv.value().get_object().if_contains("default");
            if (!d) continue;
            present = &(obj[kv.key()] = *d);
        }
        apply_defaults(*present, kv.value());
    }
}

} // namespace sluice::json
