// Validator "rules": a quality gate. Each record is checked against a list
// of field rules; records that pass go to output "pass", the others are
// rejected (output "fail") with every broken rule named in the reason.
#include "../common/json_fields.hpp"

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

// The type name a reason gives: a number is "integer" or "number" as a DOM
// would hold it.
std::string_view type_name(std::string_view text) {
    JsonType t = json_type_of(text);
    if (t == JsonType::number) return is_whole_integer(text) ? "integer" : "number";
    return json_type_name(t);
}

bool has_type(std::string_view text, std::string_view type) {
    JsonType t = json_type_of(text);
    if (type == "number") return t == JsonType::number;
    // A whole double is an integer too (JSON Schema's meaning), however
    // large: no cast to int64, which would overflow past 2^63.
    if (type == "integer") {
        if (t != JsonType::number) return false;
        if (is_whole_integer(text)) return true;
        double d = JsonValueReader::number(text);
        return std::isfinite(d) && std::trunc(d) == d;
    }
    return json_type_name(t) == type;
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
    std::string min_text, max_text; // as reasons write them
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
            if (rc.has("min")) r.min_text = number_text(*(r.min = rc.number("min", 0)));
            if (rc.has("max")) r.max_text = number_text(*(r.max = rc.number("max", 0)));
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
            if (!fields_.read(in[i].payload(), error)) {
                out.reject(i, "not a JSON object: " + error);
                continue;
            }
            reason.clear();
            for (const Rule &r : rules_) {
                check(r, reason);
                if (stop_at_first_ && !reason.empty()) break;
            }
            if (reason.empty()) out.forward(i, 0);
            else out.reject(i, reason);
        }
    }

private:
    // Appends "field: what" (in pieces: no temporary string per broken rule).
    template <class... Pieces> static void add(std::string &reason, const Rule &r, const Pieces &...what) {
        if (!reason.empty()) reason += "; ";
        reason += r.field;
        reason += ": ";
        (reason.append(std::string_view(what)), ...);
    }

    // Appends what `r` finds wrong (values are left out of reasons so that
    // the report can count them). Only the rule's field is decoded, and only
    // as far as the rule needs.
    void check(const Rule &r, std::string &reason) {
        const JsonField *field = fields_.find(r.field);
        std::string_view v = field ? field->text : std::string_view();
        JsonType t = json_type_of(v);
        if (!field || t == JsonType::null) {
            if (r.required) add(reason, r, field ? "is null" : "is missing");
            if (!field || !(r.type && *r.type == "null")) return;
        }
        if (r.type && !has_type(v, *r.type)) {
            add(reason, r, "expected ", *r.type, ", got ", type_name(v));
            return;
        }
        if (t == JsonType::number && (r.min || r.max)) {
            double d = JsonValueReader::number(v);
            if (r.min && d < *r.min) add(reason, r, "below the minimum ", r.min_text);
            if (r.max && d > *r.max) add(reason, r, "above the maximum ", r.max_text);
        }
        if ((t == JsonType::string || t == JsonType::array) && (r.min_length || r.max_length)) {
            const bj::value *array = t == JsonType::array ? values_.value(v) : nullptr;
            if (t == JsonType::array && (!array || !array->is_array())) {
                add(reason, r, "is not valid JSON");
                return;
            }
            size_t length = t == JsonType::string ? utf8_length(values_.string(v)) : array->get_array().size();
            if (r.min_length && length < *r.min_length)
                add(reason, r, "shorter than ", std::to_string(*r.min_length));
            if (r.max_length && length > *r.max_length)
                add(reason, r, "longer than ", std::to_string(*r.max_length));
        }
        if (r.regex) {
            if (t != JsonType::string) add(reason, r, "expected a string to match the regex");
            else {
                std::string_view s = values_.string(v);
                if (!RE2::PartialMatch(re2::StringPiece(s.data(), s.size()), *r.regex))
                    add(reason, r, "does not match ", r.regex_text);
            }
        }
        if (!r.allowed.empty()) {
            bool found = false;
            if (t == JsonType::string) { // decoded once, compared with the allowed strings
                std::string_view s = values_.string(v);
                for (const auto &a : r.allowed)
                    if (a.is_string() && std::string_view(a.get_string()) == s) {
                        found = true;
                        break;
                    }
            } else {
                for (const auto &a : r.allowed) found = found || values_.equals(v, a);
            }
            if (!found) add(reason, r, "not one of ", r.allowed_text);
        }
    }

    Host host_;
    std::vector<Rule> rules_;
    bool stop_at_first_ = false;
    JsonFields fields_;
    JsonValueReader values_;
};

} // namespace sluice::plugins

SLUICE_PLUGIN(sluice::plugins::Rules)
