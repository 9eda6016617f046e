#include "config_schema.hpp"

#include <sluice/json_schema.hpp>

namespace sluice {

std::vector<std::string> check_against_schema(const boost::json::value &value, const boost::json::value &schema,
                                              const std::string &path) {
    return json::check_schema(value, schema, path, /*closed_objects=*/true);
}

namespace {

// "${NAME}", "${NAME:-default}" or "${file:PATH}", and nothing around it.
bool one_reference(std::string_view s) {
    return s.size() > 3 && s.substr(0, 2) == "${" && s.back() == '}' && s.find('}') == s.size() - 1 &&
           s.find("${", 2) == std::string_view::npos;
}

} // namespace

std::vector<std::string> check_secret_fields(const boost::json::value &schema, const boost::json::object &raw,
                                             const boost::json::object &resolved, const std::string &path,
                                             std::vector<std::string> &values) {
    std::vector<std::string> problems;
    const boost::json::value *props = schema.is_object() ? schema.get_object().if_contains("properties") : nullptr;
    if (!props || !props->is_object()) return problems;
    for (const auto &kv : props->get_object()) {
        const boost::json::value *as_written = raw.if_contains(kv.key());
        const boost::json::value *value = resolved.if_contains(kv.key());
        if (!as_written || !value || !kv.value().is_object()) continue;
        const std::string where = path + "/" + std::string(kv.key());
        const boost::json::value *secret = kv.value().get_object().if_contains("secret");
        if (secret && secret->is_bool() && secret->get_bool()) {
            if (!as_written->is_string() || !one_reference(as_written->get_string()))
                problems.push_back(where + ": a secret: write it as ${VARIABLE} or ${file:PATH}, never as text in "
                                           "the manifest");
            else if (value->is_string())
                values.emplace_back(value->get_string());
        } else if (as_written->is_object() && value->is_object()) {
            for (auto &p : check_secret_fields(kv.value(), as_written->get_object(), value->get_object(), where, values))
                problems.push_back(std::move(p));
        }
    }
    return problems;
}

} // namespace sluice
