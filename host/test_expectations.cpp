#include "test_expectations.hpp"

#include <sluice/json.hpp>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <map>
#include <regex>

namespace sluice {

namespace bj = boost::json;

namespace {


// Long values are cut in messages: the point is where they differ.
std::string shown(const bj::value &v) {
    json::RecordWriter writer; // 19.99, not Boost's 1.999E1
    std::string s(writer.write(v));
    return s.size() > 200 ? s.substr(0, 200) + "..." : s;
}

bool numbers_equal(const bj::value &a, const bj::value &b) {
    if (a.is_double() || b.is_double()) return a.to_number<double>() == b.to_number<double>();
    if (a.is_int64() && b.is_int64()) return a.get_int64() == b.get_int64();
    if (a.is_uint64() && b.is_uint64()) return a.get_uint64() == b.get_uint64();
    const bj::value &i = a.is_int64() ? a : b, &u = a.is_int64() ? b : a;
    return i.get_int64() >= 0 && uint64_t(i.get_int64()) == u.get_uint64();
}

// The payload as JSON, or as a string when it is not JSON (text records).
bj::value payload_value(const CapturedRecord &r) {
    if (r.content_type.empty()) {
        boost::system::error_code ec;
        bj::value v = bj::parse(r.payload, ec);
        if (!ec) return v;
    }
    return bj::string(r.payload);
}

std::optional<std::string> attribute_of(const CapturedRecord &r, const std::string &key) {
    for (const auto &[k, v] : r.attributes)
        if (k == key) return v;
    return std::nullopt;
}

// "a.b.c" or "/a/b/c" (RFC 6901) inside `root`; nullptr when absent.
const bj::value *find_field(const bj::value &root, const std::string &field) {
    if (!field.empty() && field[0] == '/') {
        boost::system::error_code ec;
        return root.find_pointer(field, ec);
    }
    const bj::value *v = &root;
    size_t start = 0;
    while (v) {
        size_t dot = field.find('.', start);
        std::string key = field.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
        if (v->is_object()) v = v->get_object().if_contains(key);
        else if (v->is_array() && !key.empty() && std::all_of(key.begin(), key.end(), ::isdigit)) {
            size_t i = std::stoul(key);
            v = i < v->get_array().size() ? &v->get_array()[i] : nullptr;
        } else v = nullptr;
        if (dot == std::string::npos) break;
        start = dot + 1;
    }
    return v;
}

std::optional<std::string> string_list(const bj::value &v, std::vector<std::string> &out) {
    if (!v.is_array()) return "expected a list of strings";
    for (const bj::value &s : v.get_array()) {
        if (!s.is_string()) return "expected a list of strings";
        out.emplace_back(s.get_string());
    }
    return std::nullopt;
}

Condition parse_condition(const bj::value &v, const std::string &path, std::vector<std::string> &problems) {
    Condition c;
    c.json_path = path;
    if (!v.is_object()) {
        problems.push_back(path + ": expected a condition such as {\"field\": \"amount\", \"min\": 0}");
        return c;
    }
    const bj::object &o = v.get_object();
    for (const auto &kv : o) {
        std::string key(kv.key());
        const bj::value &x = kv.value();
        const std::string at = path + "/" + key;
        if (key == "field" || key == "attribute" || key == "type" || key == "matches") {
            if (!x.is_string() || x.get_string().empty()) {
                problems.push_back(at + ": expected a non-empty string");
                continue;
            }
            std::string s(x.get_string());
            if (key == "field") c.field = s;
            else if (key == "attribute") c.attribute = s;
            else if (key == "type") {
                static const char *types[] = {"string", "integer", "number", "boolean", "object", "array", "null"};
                if (std::find(std::begin(types), std::end(types), s) == std::end(types))
                    problems.push_back(at + ": unknown type '" + s +
                                       "' (expected string, integer, number, boolean, object, array or null)");
                c.type = s;
            } else {
                try {
                    std::regex check(s);
                    c.matches = s;
                } catch (const std::regex_error &e) {
                    problems.push_back(at + ": not a valid regular expression: " + e.what());
                }
            }
        } else if (key == "equals") {
            c.equals = x;
        } else if (key == "contains") {
            c.contains = x;
        } else if (key == "exists") {
            if (!x.is_bool()) problems.push_back(at + ": expected true or false");
            else c.exists = x.get_bool();
        } else if (key == "min" || key == "max") {
            if (!x.is_number()) problems.push_back(at + ": expected a number");
            else (key == "min" ? c.min : c.max) = x.to_number<double>();
        } else if (key == "one_of") {
            if (!x.is_array()) problems.push_back(at + ": expected a list of values");
            else c.one_of = x.get_array();
        } else {
            problems.push_back(at + ": unknown key (expected field or attribute, and equals, exists, type, matches, "
                                    "min, max, one_of, contains)");
        }
    }
    if (c.field.empty() == c.attribute.empty())
        problems.push_back(path + ": name either a \"field\" of the record or an \"attribute\"");
    return c;
}

// Why `record` does not meet `c`, or "" when it does.
std::string violation(const Condition &c, const CapturedRecord &record) {
    bj::value attr_value;
    const bj::value *v = nullptr;
    std::string name;
    bj::value payload;
    if (!c.attribute.empty()) {
        name = "attribute " + c.attribute;
        if (auto a = attribute_of(record, c.attribute)) {
            attr_value = bj::string(*a);
            v = &attr_value;
        }
    } else {
        name = c.field;
        payload = payload_value(record);
        v = find_field(payload, c.field);
    }
    if (c.exists) {
        if (*c.exists && !v) return name + ": is missing";
        if (!*c.exists && v) return name + ": should be absent, is " + shown(*v);
    }
    const bool checks_value = c.equals || !c.type.empty() || !c.matches.empty() || c.min || c.max || c.one_of ||
                              c.contains;
    if (!v) return checks_value ? name + ": is missing" : "";
    std::string where;
    if (c.equals && !json_matches(*c.equals, *v, false, where))
        return name + ": expected " + shown(*c.equals) + ", got " + shown(*v);
    if (!c.type.empty()) {
        std::string k(json::type_name(*v));
        bool ok = k == c.type || (c.type == "number" && k == "integer");
        if (!ok) return name + ": expected " + c.type + ", got " + k + " " + shown(*v);
    }
    if (!c.matches.empty()) {
        if (!v->is_string()) return name + ": expected a string matching " + c.matches + ", got " + shown(*v);
        if (!std::regex_search(std::string(v->get_string()), std::regex(c.matches)))
            return name + ": " + shown(*v) + " does not match " + c.matches;
    }
    if (c.min || c.max) {
        if (!v->is_number()) return name + ": expected a number, got " + shown(*v);
        double d = v->to_number<double>();
        if (c.min && d < *c.min) return name + ": " + shown(*v) + " is below the minimum " + shown(bj::value(*c.min));
        if (c.max && d > *c.max) return name + ": " + shown(*v) + " is above the maximum " + shown(bj::value(*c.max));
    }
    if (c.one_of) {
        bool any = false;
        for (const bj::value &x : *c.one_of) any = any || json_matches(x, *v, false, where);
        if (!any) return name + ": " + shown(*v) + " is not one of " + shown(*c.one_of);
    }
    if (c.contains) {
        bool ok = false;
        if (v->is_string() && c.contains->is_string())
            ok = std::string_view(v->get_string()).find(std::string_view(c.contains->get_string())) !=
                 std::string_view::npos;
        else if (v->is_array())
            for (const bj::value &x : v->get_array()) ok = ok || json_matches(*c.contains, x, true, where);
        if (!ok) return name + ": " + shown(*v) + " does not contain " + shown(*c.contains);
    }
    return "";
}

std::string plural(size_t n, const char *what) { return std::to_string(n) + " " + what + (n == 1 ? "" : "s"); }

std::string list_records(const std::vector<bj::value> &values, size_t max = 10) {
    std::string out;
    for (size_t i = 0; i < values.size() && i < max; ++i) out += "\n  " + shown(values[i]);
    if (values.size() > max) out += "\n  ... and " + std::to_string(values.size() - max) + " more";
    return out;
}

} // namespace

bool json_matches(const bj::value &expected, const bj::value &actual, bool partial, std::string &where,
                  const std::string &path) {
    const std::string at = path.empty() ? "/" : path;
    if (expected.is_number() && actual.is_number()) {
        if (numbers_equal(expected, actual)) return true;
        where = at + ": expected " + shown(expected) + ", got " + shown(actual);
        return false;
    }
    if (expected.kind() != actual.kind() &&
        !(expected.is_number() && actual.is_number())) {
        where = at + ": expected " + shown(expected) + ", got " + shown(actual);
        return false;
    }
    if (expected.is_object()) {
        const bj::object &e = expected.get_object(), &a = actual.get_object();
        for (const auto &kv : e) {
            const std::string p = path + "/" + std::string(kv.key());
            const bj::value *x = a.if_contains(kv.key());
            if (!x) {
                where = p + ": missing (expected " + shown(kv.value()) + ")";
                return false;
            }
            if (!json_matches(kv.value(), *x, partial, where, p)) return false;
        }
        if (!partial)
            for (const auto &kv : a)
                if (!e.contains(kv.key())) {
                    where = path + "/" + std::string(kv.key()) + ": not expected (got " + shown(kv.value()) + ")";
                    return false;
                }
        return true;
    }
    if (expected.is_array()) {
        const bj::array &e = expected.get_array(), &a = actual.get_array();
        for (size_t i = 0; i < e.size() && i < a.size(); ++i)
            if (!json_matches(e[i], a[i], partial, where, path + "/" + std::to_string(i))) return false;
        if (e.size() != a.size()) {
            where = at + ": expected " + plural(e.size(), "element") + ", got " + std::to_string(a.size());
            return false;
        }
        return true;
    }
    if (expected == actual) return true;
    where = at + ": expected " + shown(expected) + ", got " + shown(actual);
    return false;
}

Expectation parse_expectation(const bj::value &v, const std::string &path, std::vector<std::string> &problems) {
    Expectation e;
    e.json_path = path;
    if (!v.is_object()) {
        problems.push_back(path + ": expected an object such as {\"stage\": \"quality.pass\", \"count\": 2}");
        return e;
    }
    const bj::object &o = v.get_object();
    for (const auto &kv : o) {
        std::string key(kv.key());
        const bj::value &x = kv.value();
        const std::string at = path + "/" + key;
        if (key == "stage") {
            if (!x.is_string() || x.get_string().empty()) {
                problems.push_back(at + ": expected \"stage\" or \"stage.output\"");
                continue;
            }
            std::string s(x.get_string());
            size_t dot = s.find('.');
            e.stage = s.substr(0, dot);
            if (dot != std::string::npos) e.output = s.substr(dot + 1);
        } else if (key == "count") {
            if (!x.is_int64() || x.get_int64() < 0) problems.push_back(at + ": expected a whole number, 0 or more");
            else e.count = uint64_t(x.get_int64());
        } else if (key == "records" || key == "contains") {
            if (!x.is_array()) problems.push_back(at + ": expected a list of records");
            else (key == "records" ? e.records : e.contains) = x.get_array();
        } else if (key == "unordered") {
            if (!x.is_bool()) problems.push_back(at + ": expected true or false");
            else e.unordered = x.get_bool();
        } else if (key == "each") {
            if (!x.is_array()) {
                problems.push_back(at + ": expected a list of conditions");
                continue;
            }
            size_t i = 0;
            for (const bj::value &c : x.get_array())
                e.each.push_back(parse_condition(c, at + "/" + std::to_string(i++), problems));
        } else if (key == "rejected" || key == "errors") {
            std::vector<std::string> reasons;
            if (auto problem = string_list(x, reasons)) problems.push_back(at + ": " + *problem);
            else (key == "rejected" ? e.rejected : e.errors) = std::move(reasons);
        } else {
            problems.push_back(at + ": unknown key (expected stage, count, records, unordered, contains, each, "
                                    "rejected, errors)");
        }
    }
    if (!o.contains("stage")) problems.push_back(path + "/stage: required key is missing");
    else if (!e.looks_at_records() && !e.rejected && !e.errors)
        problems.push_back(path + ": expects nothing: give count, records, contains, each, rejected or errors");
    if ((e.rejected || e.errors) && !e.output.empty())
        problems.push_back(path + "/stage: rejected and errors are the stage's, not an output's: name the stage alone");
    return e;
}

std::vector<std::string> check_records(const Expectation &e, const std::vector<CapturedRecord> &got) {
    std::vector<std::string> out;
    std::vector<bj::value> values;
    for (const CapturedRecord &r : got) values.push_back(payload_value(r));
    if (e.count && *e.count != got.size())
        out.push_back("expected " + plural(*e.count, "record") + ", got " + std::to_string(got.size()) +
                      (got.empty() ? "" : ":" + list_records(values)));
    if (e.records) {
        const bj::array &want = *e.records;
        if (e.unordered) {
            // Each expected record takes the first unused equal one.
            std::vector<bool> used(values.size(), false);
            std::vector<std::string> missing;
            for (const bj::value &w : want) {
                bool found = false;
                for (size_t i = 0; i < values.size() && !found; ++i) {
                    std::string where;
                    if (!used[i] && json_matches(w, values[i], false, where)) used[i] = found = true;
                }
                if (!found) missing.push_back("\n  - " + shown(w));
            }
            std::string extra;
            for (size_t i = 0; i < values.size(); ++i)
                if (!used[i]) extra += "\n  + " + shown(values[i]);
            if (!missing.empty() || !extra.empty()) {
                std::string m = "records differ (in any order; - expected but not sent, + sent but not expected):";
                for (const auto &s : missing) m += s;
                out.push_back(m + extra);
            }
        } else {
            std::string m;
            size_t shown_diffs = 0;
            for (size_t i = 0; i < want.size() || i < values.size(); ++i) {
                if (i >= values.size()) {
                    m += "\n  record " + std::to_string(i + 1) + ": missing, expected " + shown(want[i]);
                } else if (i >= want.size()) {
                    m += "\n  record " + std::to_string(i + 1) + ": not expected, got " + shown(values[i]);
                } else {
                    std::string where;
                    if (json_matches(want[i], values[i], false, where)) continue;
                    m += "\n  record " + std::to_string(i + 1) + ": " + where + "\n    expected " +
                         shown(want[i]) + "\n    got      " + shown(values[i]);
                }
                if (++shown_diffs == 5) {
                    m += "\n  ...";
                    break;
                }
            }
            if (!m.empty())
                out.push_back("records differ (expected " + plural(want.size(), "record") + ", got " +
                              std::to_string(values.size()) + "):" + m);
        }
    }
    if (e.contains) {
        for (const bj::value &w : *e.contains) {
            bool found = false;
            std::string closest;
            for (const bj::value &v : values) {
                std::string where;
                if (json_matches(w, v, true, where)) {
                    found = true;
                    break;
                }
                if (closest.empty()) closest = where;
            }
            if (!found)
                out.push_back("no record matches " + shown(w) +
                              (values.empty() ? " (none was sent)" : " (the first one: " + closest + ")"));
        }
    }
    for (const Condition &c : e.each) {
        size_t failing = 0;
        std::string first;
        for (size_t i = 0; i < got.size(); ++i) {
            std::string why = violation(c, got[i]);
            if (why.empty()) continue;
            if (failing++ == 0) first = "record " + std::to_string(i + 1) + ": " + why;
        }
        if (failing)
            out.push_back(c.json_path.substr(e.json_path.size() + 1) + ": " + plural(failing, "record") + " of " +
                          std::to_string(got.size()) + (failing == 1 ? " fails" : " fail") + " this condition; " + first);
    }
    return out;
}

std::vector<std::string> check_reasons(const std::string &what, const std::vector<std::string> &expected,
                                       const bj::array &reported) {
    std::map<std::string, int64_t> want, got;
    for (const std::string &r : expected) ++want[r];
    for (const bj::value &r : reported)
        got[std::string(r.at("reason").as_string())] += r.at("count").to_number<int64_t>();
    if (want == got) return {};
    std::string m = what + " reasons differ (- expected but not seen, + seen but not expected):";
    for (const auto &[reason, n] : want) {
        int64_t have = got.count(reason) ? got[reason] : 0;
        for (int64_t i = have; i < n; ++i) m += "\n  - " + reason;
    }
    for (const auto &[reason, n] : got) {
        int64_t wanted = want.count(reason) ? want[reason] : 0;
        for (int64_t i = wanted; i < n; ++i) m += "\n  + " + reason;
    }
    return {m};
}

} // namespace sluice
