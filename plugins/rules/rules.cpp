// Validator "rules": a quality gate. Each record is checked against a list
// of field rules; records that pass go to output "pass", the others are
// rejected (output "fail") with every broken rule named in the reason.
#include <sluice/config_spec.hpp>
#include <sluice/json.hpp>
#include <sluice/plugin.hpp>

#include <cmath>

#include <re2/re2.h>

#include <array>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace sluice::plugins {

namespace bj = boost::json;

namespace {


bool has_type(const bj::value &v, std::string_view type) {
    if (type == "number") return v.is_number();
    // A whole double is an integer too (JSON Schema's meaning), however
    // large: no cast to int64, which would overflow past 2^63.
    if (type == "integer")
        return v.is_int64() || v.is_uint64() ||
               (v.is_double() && std::isfinite(v.get_double()) && std::trunc(v.get_double()) == v.get_double());
    return json::type_name(v) == type;
}

// UTF-8 code points, not bytes: "max_length": 3 accepts "été".
size_t utf8_length(std::string_view s) {
    size_t n = 0;
    for (unsigned char c : s) n += (c & 0xC0) != 0x80;
    return n;
}

std::string json_text(const bj::value &v) {
    json::RecordWriter writer;
    return std::string(writer.write(v));
}

std::string number_text(double d) { return json_text(bj::value(d)); }

struct Rule {
    std::string field;
    bool required = false;
    std::optional<std::string> type;
    std::optional<double> min, max;
    std::optional<size_t> min_length, max_length;
    std::unique_ptr<RE2> regex;
    std::string regex_text;
    std::vector<bj::value> allowed;
    std::string allowed_text;
};

} // namespace

class Rules {
public:
    static constexpr sluice_kind kind = SLUICE_KIND_VALIDATOR;
    static constexpr const char *name = "rules";
    static constexpr const char *version = "1.0.0";
    static constexpr const char *description =
        "Quality gate: checks fields (required, type, min/max, regex, enum, length); passing records go to 'pass', the rest are rejected to 'fail' with the rules they broke.";
    static constexpr uint64_t capabilities = SLUICE_CAP_READ_ONLY;
    static constexpr std::array<const char *, 2> outputs = {"pass", "fail"};
    static config::Spec config_spec() {
        using config::Field;
        config::Spec rule{
            Field::string("field", "Top-level field name").required().not_empty(),
            Field::boolean("required", "The field must be present and not null").default_to(false),
            Field::choice("type", {"string", "number", "integer", "boolean", "object", "array", "null"},
                          "JSON type the value must have (integer also accepts 3.0)"),
            Field::number("min", "Smallest number allowed"),
            Field::number("max", "Largest number allowed"),
            Field::integer("min_length", "Fewest characters (UTF-8 code points) of a string, or items of an array")
                .minimum(0),
            Field::integer("max_length", "Most characters (UTF-8 code points) of a string, or items of an array")
                .minimum(0),
            Field::string("regex", "An RE2 pattern (github.com/google/re2/wiki/Syntax) the string must contain a "
                                   "match of (anchor with ^...$)"),
            Field::custom("enum", R"({"type": "array"})", "The value must equal one of these JSON values"),
        };
        return {
            Field::list("rules", rule, "Checks applied to every record; a record passes when it breaks none")
                .required(),
            Field::boolean("stop_at_first", "Report only the first broken rule of a record (faster on bad data)")
                .default_to(false),
        };
    }

    explicit Rules(const Context &ctx) : host_(ctx.host) {
        json::Config c(ctx.config_json);
        const bj::value *rules = c.find("rules");
        if (!rules || !rules->is_array() || rules->get_array().empty())
            c.fail("rules", "required: expected a non-empty array of rules");
        size_t index = 0;
        for (const bj::value &rv : rules->get_array()) {
            std::string at = "rules[" + std::to_string(index++) + "]";
            if (!rv.is_object()) throw Error(at + ": expected an object");
            json::Config rc(rv.get_object(), at + ".");
            Rule r;
            r.field = rc.required_string("field");
            r.required = rc.boolean("required");
            if (rc.has("type")) r.type = rc.string("type");
            if (rc.has("min")) r.min = rc.number("min", 0);
            if (rc.has("max")) r.max = rc.number("max", 0);
            if (rc.has("min_length")) r.min_length = size_t(std::max<int64_t>(0, rc.integer("min_length", 0)));
            if (rc.has("max_length")) r.max_length = size_t(std::max<int64_t>(0, rc.integer("max_length", 0)));
            if (rc.has("regex")) {
                r.regex_text = rc.string("regex");
                RE2::Options opts;
                opts.set_log_errors(false);
                r.regex = std::make_unique<RE2>(r.regex_text, opts);
                if (!r.regex->ok()) rc.fail("regex", "invalid pattern: " + r.regex->error());
            }
            if (const bj::value *e = rc.find("enum")) {
                if (!e->is_array() || e->get_array().empty()) rc.fail("enum", "expected a non-empty array");
                for (const auto &v : e->get_array()) r.allowed.push_back(v);
                r.allowed_text = json_text(*e);
            }
            rules_.push_back(std::move(r));
        }
        stop_at_first_ = c.boolean("stop_at_first");
    }

    void process(Input in, Emitter &out) {
        std::string error, reason;
        for (uint32_t i = 0; i < in.size(); ++i) {
            bj::object *obj = parser_.parse_object(in[i].payload(), error);
            if (!obj) {
                out.reject(i, "not a JSON object: " + error);
                continue;
            }
            reason.clear();
            for (const Rule &r : rules_) {
                check(*obj, r, reason);
                if (stop_at_first_ && !reason.empty()) break;
            }
            if (reason.empty()) out.forward(i, 0);
            else out.reject(i, reason);
        }
    }

private:
    static void add(std::string &reason, const Rule &r, std::string_view what) {
        if (!reason.empty()) reason += "; ";
        reason += r.field;
        reason += ": ";
        reason += what;
    }

    // Appends what `r` finds wrong (values are left out of reasons so that
    // the report can count them).
    void check(const bj::object &obj, const Rule &r, std::string &reason) const {
        const bj::value *v = obj.if_contains(r.field);
        if (!v || v->is_null()) {
            if (r.required) add(reason, r, v ? "is null" : "is missing");
            if (!v || !(r.type && *r.type == "null")) return;
        }
        if (r.type && !has_type(*v, *r.type)) {
            add(reason, r, "expected " + *r.type + ", got " + std::string(json::type_name(*v)));
            return;
        }
        if (v->is_number()) {
            double d = json::as_double(*v);
            if (r.min && d < *r.min) add(reason, r, "below the minimum " + number_text(*r.min));
            if (r.max && d > *r.max) add(reason, r, "above the maximum " + number_text(*r.max));
        }
        size_t length = v->is_string() ? utf8_length(v->get_string()) : v->is_array() ? v->get_array().size() : 0;
        if ((v->is_string() || v->is_array())) {
            if (r.min_length && length < *r.min_length)
                add(reason, r, "shorter than " + std::to_string(*r.min_length));
            if (r.max_length && length > *r.max_length)
                add(reason, r, "longer than " + std::to_string(*r.max_length));
        }
        if (r.regex) {
            if (!v->is_string()) add(reason, r, "expected a string to match the regex");
            else {
                const bj::string &s = v->get_string();
                if (!RE2::PartialMatch(re2::StringPiece(s.data(), s.size()), *r.regex))
                    add(reason, r, "does not match " + r.regex_text);
            }
        }
        if (!r.allowed.empty()) {
            bool found = false;
            for (const auto &a : r.allowed) found = found || a == *v;
            if (!found) add(reason, r, "not one of " + r.allowed_text);
        }
    }

    Host host_;
    std::vector<Rule> rules_;
    bool stop_at_first_ = false;
    json::RecordParser parser_;
};

} // namespace sluice::plugins

SLUICE_PLUGIN(sluice::plugins::Rules)
