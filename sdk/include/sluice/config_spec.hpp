// sluice/config_spec.hpp - declare a stage's config once.
//
// Each config field is declared once, with its name, type, default, bounds
// or choices, description and whether it is a secret:
//
//   #include <sluice/config_spec.hpp>
//
//   class Sample {
//   public:
//     static sluice::config::Spec config_spec() {
//       using sluice::config::Field;
//       return {
//         Field::string("path", "File to read, relative to the manifest").required(),
//         Field::choice("format", {"ndjson", "csv"}, "How to parse it").default_to("ndjson"),
//         Field::integer("batch_records", "Records per request").minimum(1).default_to(100),
//         Field::boolean("verify", "Check certificates").default_to(true),
//       };
//     }
//     explicit Sample(const sluice::Context &ctx) {
//       sluice::json::Config c(ctx.config_json);     // every default filled in
//       path_ = c.required_string("path");
//       batch_ = c.integer("batch_records");         // no default repeated here
//     }
//   };
//
// From that one declaration come:
//   - the JSON Schema the host checks the manifest's config against, with
//     one-line errors naming the field ("/stages/2/config/format: ...");
//   - the config the constructor receives: SLUICE_PLUGIN applies the
//     defaults before your constructor runs (and sets SLUICE_CAP_CONFIG_DEFAULTS,
//     so the host does too), so `ctx.config_json` holds every field that has
//     a default;
//   - the config table of `sluice plugins` and `sluice plugins --markdown`,
//     which generates the table in each bundled plugin's README.
// A stage with `config_spec()` does not define `config_schema`.
//
// Shared parts are declared once here and added with Spec::include: retry()
// (tries with backoff), tls_client() and tls_server().
#ifndef SLUICE_CONFIG_SPEC_HPP
#define SLUICE_CONFIG_SPEC_HPP

#include <sluice/json.hpp>
#include <sluice/json_schema.hpp>
#include <sluice/plugin.hpp>

#include <boost/json.hpp>

#include <chrono>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace sluice::config {

namespace bj = boost::json;

class Spec;

// One config field. Build it with a factory (its type), then narrow it.
class Field {
public:
    static Field string(std::string name, std::string description) { return {std::move(name), "string", std::move(description)}; }
    static Field integer(std::string name, std::string description) { return {std::move(name), "integer", std::move(description)}; }
    static Field number(std::string name, std::string description) { return {std::move(name), "number", std::move(description)}; }
    static Field boolean(std::string name, std::string description) { return {std::move(name), "boolean", std::move(description)}; }
    // A string out of a fixed list.
    static Field choice(std::string name, std::initializer_list<const char *> options, std::string description) {
        Field f(std::move(name), "string", std::move(description));
        bj::array list;
        for (const char *o : options) list.emplace_back(o);
        f.schema_["enum"] = std::move(list);
        return f;
    }
    // An array of strings (a list of names, columns, patterns).
    static Field strings(std::string name, std::string description) {
        Field f(std::move(name), "array", std::move(description));
        f.schema_["items"] = bj::object{{"type", "string"}};
        return f;
    }
    // An object whose values all follow `values` (a JSON Schema, e.g.
    // R"({"type": "string"})"), or any values when empty.
    static Field map(std::string name, std::string_view values, std::string description) {
        Field f(std::move(name), "object", std::move(description));
        f.schema_["additionalProperties"] = values.empty() ? bj::value(true) : bj::parse(values);
        return f;
    }
    // An object with fields of its own.
    static Field object(std::string name, const Spec &fields, std::string description);
    // An array of objects, each with the fields of `item`.
    static Field list(std::string name, const Spec &item, std::string description);
    // Anything a JSON Schema can say, for a shape the factories above do not
    // cover: `schema` is the field's schema without its description.
    static Field custom(std::string name, std::string_view schema, std::string description) {
        Field f(std::move(name), "", std::move(description));
        bj::value v = bj::parse(schema);
        for (auto &kv : v.as_object()) f.schema_[kv.key()] = kv.value();
        f.schema_["description"] = f.description_;
        return f;
    }

    Field &required() & { required_ = true; return *this; }
    Field &&required() && { return std::move(required()); }
    // The value an absent field takes; shown as the default in the tables.
    Field &default_to(bj::value v) & { schema_["default"] = std::move(v); return *this; }
    Field &&default_to(bj::value v) && { return std::move(default_to(std::move(v))); }
    Field &minimum(double v) & { schema_["minimum"] = number_value(v); return *this; }
    Field &&minimum(double v) && { return std::move(minimum(v)); }
    Field &maximum(double v) & { schema_["maximum"] = number_value(v); return *this; }
    Field &&maximum(double v) && { return std::move(maximum(v)); }
    // Strings: at least this many characters (1: not empty).
    Field &min_length(int64_t n) & { schema_["minLength"] = n; return *this; }
    Field &&min_length(int64_t n) && { return std::move(min_length(n)); }
    Field &not_empty() & { return min_length(1); }
    Field &&not_empty() && { return std::move(min_length(1)); }
    // A password, key or token: marked "secret" in the schema and the tables.
    Field &secret() & { schema_["secret"] = true; return *this; }
    Field &&secret() && { return std::move(secret()); }

    const std::string &name() const { return name_; }
    bool is_required() const { return required_; }
    const bj::object &schema() const { return schema_; }

private:
    Field(std::string name, const char *type, std::string description)
        : name_(std::move(name)), description_(std::move(description)) {
        if (*type) schema_["type"] = type;
        schema_["description"] = description_;
    }
    static bj::value number_value(double v) {
        if (v == double(int64_t(v))) return int64_t(v);
        return v;
    }

    std::string name_;
    std::string description_;
    bj::object schema_;
    bool required_ = false;
};

// The fields of a config, in the order they are shown.
class Spec {
public:
    Spec() = default;
    Spec(std::initializer_list<Field> fields) : fields_(fields) {}

    Spec &add(Field f) & { fields_.push_back(std::move(f)); return *this; }
    Spec &&add(Field f) && { return std::move(add(std::move(f))); }
    // Adds a shared part's fields (retry(), tls_client() ...).
    Spec &include(const Spec &part) & {
        fields_.insert(fields_.end(), part.fields_.begin(), part.fields_.end());
        return *this;
    }
    Spec &&include(const Spec &part) && { return std::move(include(part)); }

    // Marks a field (added or included) required: a shared part's optional
    // field that this stage cannot do without.
    Spec &require(std::string_view name) & {
        for (Field &f : fields_)
            if (f.name() == name) f.required();
        return *this;
    }
    Spec &&require(std::string_view name) && { return std::move(require(name)); }

    const std::vector<Field> &fields() const { return fields_; }

    // The JSON Schema of the config: an object with these properties only.
    bj::object schema() const {
        bj::object properties;
        bj::array required;
        for (const Field &f : fields_) {
            properties[f.name()] = f.schema();
            if (f.is_required()) required.emplace_back(f.name());
        }
        bj::object s{{"type", "object"}};
        if (!required.empty()) s["required"] = std::move(required);
        s["properties"] = std::move(properties);
        return s;
    }
    std::string schema_text() const { return bj::serialize(schema()); }

    // `config_json` with every absent field that has a default filled in (in
    // nested objects and lists too). Throws sluice::Error naming the field
    // ("rules[2].min: expected a number") when it breaks the spec: the host
    // has checked it already, but a test driver calling create may not have.
    // Text that is not a JSON object comes back unchanged, for the plugin's
    // own parser to report.
    std::string with_defaults(std::string_view config_json) const {
        boost::system::error_code ec;
        bj::value v = bj::parse(config_json, ec);
        if (ec || !v.is_object()) return std::string(config_json);
        const bj::value s = schema();
        std::vector<std::string> problems = json::check_schema(v, s, "", /*closed_objects=*/true);
        if (!problems.empty()) throw Error(field_path(problems.front()));
        json::apply_defaults(v, s);
        return bj::serialize(v);
    }

private:
    // "/rules/2/min: what" -> "rules[2].min: what", as json::Config says it.
    static std::string field_path(const std::string &problem) {
        size_t colon = problem.find(": ");
        std::string pointer = problem.substr(0, colon), out;
        size_t i = 0;
        while (i < pointer.size()) {
            size_t next = pointer.find('/', i + 1);
            std::string part = pointer.substr(i + 1, next == std::string::npos ? std::string::npos : next - i - 1);
            bool index = !part.empty() && part.find_first_not_of("0123456789") == std::string::npos;
            out += index ? "[" + part + "]" : (out.empty() ? "" : ".") + part;
            i = next == std::string::npos ? pointer.size() : next;
        }
        return (out.empty() ? std::string("config") : out) + (colon == std::string::npos ? "" : problem.substr(colon));
    }

    std::vector<Field> fields_;
};

inline Field Field::object(std::string name, const Spec &fields, std::string description) {
    Field f(std::move(name), "object", std::move(description));
    bj::object s = fields.schema();
    f.schema_["properties"] = std::move(s["properties"]);
    if (s.contains("required")) f.schema_["required"] = std::move(s["required"]);
    return f;
}

inline Field Field::list(std::string name, const Spec &item, std::string description) {
    Field f(std::move(name), "array", std::move(description));
    f.schema_["items"] = item.schema();
    return f;
}

// --- shared parts ------------------------------------------------------------

// "retry": {"max_attempts", "backoff_ms", "max_backoff_ms"}: tries of one
// request, waiting backoff_ms, then twice as long each time up to
// max_backoff_ms, with jitter (sluice/backoff.hpp). `when` says what is
// retried, for the description: "per request on timeouts and 5xx".
inline Spec retry(std::string_view when) {
    return {Field::object("retry",
                          {Field::integer("max_attempts", "Tries in all, the first included").minimum(1).default_to(5),
                           Field::integer("backoff_ms", "Wait before the first retry").minimum(1).default_to(500),
                           Field::integer("max_backoff_ms", "Longest wait between tries").minimum(1).default_to(30000)},
                          "Tries " + std::string(when) +
                              ", with exponential backoff and jitter; a Retry-After header (seconds) is honoured")
                .default_to(bj::object{})};
}

// The settings retry() declares, read from a config with defaults applied.
struct RetrySettings {
    int max_attempts = 0;
    std::chrono::milliseconds backoff{0}, max_backoff{0};

    static RetrySettings read(const json::Config &config) {
        json::Config r = config.child("retry");
        RetrySettings s;
        s.max_attempts = int(r.integer("max_attempts"));
        s.backoff = std::chrono::milliseconds(r.integer("backoff_ms"));
        s.max_backoff = std::chrono::milliseconds(r.integer("max_backoff_ms"));
        return s;
    }
};

// A client of an https:// server: "tls_verify" and "ca_file".
inline Spec tls_client() {
    return {Field::boolean("tls_verify", "https: verify the server's certificate and name").default_to(true),
            Field::string("ca_file", "https: extra CA certificates (PEM) to trust, relative to the manifest")
                .not_empty()};
}

// A server that may speak HTTPS: "tls_cert_file", "tls_key_file" and
// "tls_client_ca_file".
inline Spec tls_server() {
    return {Field::string("tls_cert_file",
                          "Serve HTTPS with this certificate chain (PEM), relative to the manifest; needs tls_key_file")
                .not_empty(),
            Field::string("tls_key_file", "The private key (PEM) of tls_cert_file").not_empty(),
            Field::string("tls_client_ca_file",
                          "Require a client certificate signed by these CAs (PEM): mutual TLS")
                .not_empty()};
}

} // namespace sluice::config

#endif // SLUICE_CONFIG_SPEC_HPP
