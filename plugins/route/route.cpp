// Transformer "route": sends each record to one of several named outputs by
// conditions on its fields, or to a default output when none matches. The
// outputs are the ones its config names, so stages can read "route.eu".
#include "../common/json_fields.hpp"

#include <sluice/config_spec.hpp>
#include <sluice/json.hpp>
#include <sluice/plugin.hpp>

#include <re2/re2.h>

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

namespace sluice::plugins {

namespace bj = boost::json;

namespace {

// One condition tree: a field test, or all/any/not of others.
struct Condition {
    enum class Op { all, any, negate, equals, not_equals, in, exists, regex, gt, gte, lt, lte } op = Op::all;
    std::string field;
    bj::value value;                // equals / not_equals / in (array) / exists (bool)
    double number = 0;              // gt, gte, lt, lte
    std::unique_ptr<RE2> re;        // regex
    std::vector<Condition> children; // all, any, not

    // `values` decodes the few values a test needs.
    bool matches(const JsonFields &fields, JsonValueReader &values) const {
        switch (op) {
        case Op::all:
            return std::all_of(children.begin(), children.end(),
                               [&](const Condition &c) { return c.matches(fields, values); });
        case Op::any:
            return std::any_of(children.begin(), children.end(),
                               [&](const Condition &c) { return c.matches(fields, values); });
        case Op::negate: return !children[0].matches(fields, values);
        default: break;
        }
        const JsonField *f = fields.find(field);
        if (!f) return op == Op::not_equals || (op == Op::exists && !value.get_bool());
        std::string_view v = f->text;
        JsonType t = json_type_of(v);
        switch (op) {
        case Op::exists: return (t != JsonType::null) == value.get_bool();
        case Op::equals: return values.equals(v, value);
        case Op::not_equals: return !values.equals(v, value);
        case Op::in:
            return std::any_of(value.get_array().begin(), value.get_array().end(),
                               [&](const bj::value &e) { return values.equals(v, e); });
        case Op::regex: {
            if (t != JsonType::string) return false;
            std::string_view s = values.string(v);
            return RE2::PartialMatch(re2::StringPiece(s.data(), s.size()), *re);
        }
        case Op::gt: return t == JsonType::number && JsonValueReader::number(v) > number;
        case Op::gte: return t == JsonType::number && JsonValueReader::number(v) >= number;
        case Op::lt: return t == JsonType::number && JsonValueReader::number(v) < number;
        case Op::lte: return t == JsonType::number && JsonValueReader::number(v) <= number;
        default: return false;
        }
    }
};

Condition parse_condition(const bj::value &v, const std::string &path) {
    auto fail = [&](const std::string &what) -> Condition { throw Error(path + ": " + what); };
    if (!v.is_object()) return fail("expected an object");
    const bj::object &o = v.get_object();
    Condition c;
    for (const char *combinator : {"all", "any"}) {
        if (const bj::value *list = o.if_contains(combinator)) {
            if (o.size() != 1) return fail(std::string("\"") + combinator + "\" must be the only key");
            if (!list->is_array() || list->get_array().empty()) return fail(std::string(combinator) + ": expected a non-empty array");
            c.op = combinator[1] == 'l' ? Condition::Op::all : Condition::Op::any;
            size_t i = 0;
            for (const auto &child : list->get_array())
                c.children.push_back(parse_condition(child, path + "." + combinator + "[" + std::to_string(i++) + "]"));
            return c;
        }
    }
    if (const bj::value *inner = o.if_contains("not")) {
        if (o.size() != 1) return fail("\"not\" must be the only key");
        c.op = Condition::Op::negate;
        c.children.push_back(parse_condition(*inner, path + ".not"));
        return c;
    }
    const bj::value *field = o.if_contains("field");
    if (!field || !field->is_string() || field->get_string().empty()) return fail("field: expected a field name");
    c.field = field->get_string();
    if (o.size() != 2) return fail("expected \"field\" and exactly one test (equals, not_equals, in, exists, regex, gt, gte, lt, lte)");
    for (const auto &kv : o) {
        std::string key(kv.key());
        const bj::value &arg = kv.value();
        if (key == "field") continue;
        if (key == "equals") c.op = Condition::Op::equals;
        else if (key == "not_equals") c.op = Condition::Op::not_equals;
        else if (key == "in") {
            if (!arg.is_array()) return fail("in: expected an array");
            c.op = Condition::Op::in;
        } else if (key == "exists") {
            if (!arg.is_bool()) return fail("exists: expected true or false");
            c.op = Condition::Op::exists;
        } else if (key == "regex") {
            if (!arg.is_string()) return fail("regex: expected a string");
            RE2::Options opts;
            opts.set_log_errors(false);
            c.re = std::make_unique<RE2>(std::string(arg.get_string()), opts);
            if (!c.re->ok()) return fail("regex: invalid pattern: " + c.re->error());
            c.op = Condition::Op::regex;
        } else if (key == "gt" || key == "gte" || key == "lt" || key == "lte") {
            if (!arg.is_number()) return fail(key + ": expected a number");
            c.number = json::as_double(arg);
            c.op = key == "gt" ? Condition::Op::gt : key == "gte" ? Condition::Op::gte : key == "lt" ? Condition::Op::lt : Condition::Op::lte;
        } else {
            return fail("unknown test '" + key + "' (expected equals, not_equals, in, exists, regex, gt, gte, lt, lte)");
        }
        c.value = arg;
    }
    return c;
}

} // namespace

class Route {
public:
    static constexpr sluice_kind kind = SLUICE_KIND_TRANSFORMER;
    static constexpr const char *name = "route";
    static constexpr const char *version = "1.0.0";
    static constexpr const char *description =
        "Sends each record to the output of the first route whose condition it meets (or of every one, mode all), else to the default output.";
    static constexpr uint64_t capabilities = SLUICE_CAP_READ_ONLY;
    static config::Spec config_spec() {
        using config::Field;
        config::Spec route{
            Field::string("output", "Output name; other stages read it as \"<stage>.<output>\"").required().not_empty(),
            Field::map("when", "",
                       "{\"field\": f, TEST: value} with TEST one of equals, not_equals, in, exists, regex, gt, gte, "
                       "lt, lte; or {\"all\": [...]}, {\"any\": [...]}, {\"not\": {...}}")
                .required(),
        };
        return {
            Field::list("routes", route, "Tried in order; each names an output and a condition").required(),
            Field::string("default", "Output for records no route matches").not_empty().default_to("default"),
            Field::choice("mode", {"first", "all"},
                          "first: the first matching route only; all: every matching route (a copy each)")
                .default_to("first"),
        };
    }

    explicit Route(const Context &ctx) {
        json::Config c(ctx.config_json);
        const bj::value *routes = c.find("routes");
        if (!routes || !routes->is_array() || routes->get_array().empty())
            c.fail("routes", "required: expected a non-empty array");
        size_t i = 0;
        for (const bj::value &r : routes->get_array()) {
            std::string path = "routes[" + std::to_string(i++) + "]";
            if (!r.is_object()) throw Error(path + ": expected an object");
            json::Config rc(r.get_object(), path + ".");
            std::string out = rc.required_string("output");
            const bj::value *when = rc.find("when");
            if (!when) rc.fail("when", "required: expected a condition");
            routes_.push_back({output_index(out), parse_condition(*when, path + ".when")});
        }
        default_ = output_index(c.string("default"));
        std::string mode = c.string("mode");
        if (mode != "first" && mode != "all") c.fail("mode", "expected first or all");
        all_ = mode == "all";
    }

    const std::vector<std::string> &output_names() const { return outputs_; }

    void process(Input in, Emitter &out) {
        std::string error;
        for (uint32_t i = 0; i < in.size(); ++i) {
            if (!fields_.read(in[i].payload(), error)) {
                out.fail(i, "route: " + error);
                continue;
            }
            bool matched = false;
            for (const auto &[output, condition] : routes_) {
                if (!condition.matches(fields_, values_)) continue;
                out.forward(i, output);
                matched = true;
                if (!all_) break;
            }
            if (!matched) out.forward(i, default_);
        }
    }

private:
    uint32_t output_index(const std::string &name) {
        auto it = std::find(outputs_.begin(), outputs_.end(), name);
        if (it != outputs_.end()) return uint32_t(it - outputs_.begin());
        outputs_.push_back(name);
        return uint32_t(outputs_.size() - 1);
    }

    std::vector<std::string> outputs_;
    std::vector<std::pair<uint32_t, Condition>> routes_;
    uint32_t default_ = 0;
    bool all_ = false;
    JsonFields fields_;
    JsonValueReader values_;
};

} // namespace sluice::plugins

SLUICE_PLUGIN(sluice::plugins::Route)
