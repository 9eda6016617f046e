// Checks a stage's config against the JSON Schema subset its plugin declares
// (sluice_stage_descriptor.config_schema), so that every plugin gets the same
// precise messages for unknown keys, wrong types and missing values.
#pragma once

#include <boost/json.hpp>

#include <string>
#include <vector>

namespace sluice {

// The keywords of sluice/json_schema.hpp; an object with "properties" refuses
// other keys unless "additionalProperties" allows them. Returns one message per problem: "<path>: <what>", path like
// "/stages/1/config/format".
std::vector<std::string> check_against_schema(const boost::json::value &value,
                                              const boost::json::value &schema,
                                              const std::string &path);

// Fields the schema marks "secret": true (in nested objects too) must be
// written in the manifest (`raw`) as one ${...} reference, never as text:
// one message per field that is not, "<path>: what". The values they
// resolved to (in `resolved`) are added to `values`.
std::vector<std::string> check_secret_fields(const boost::json::value &schema, const boost::json::object &raw,
                                             const boost::json::object &resolved, const std::string &path,
                                             std::vector<std::string> &values);

} // namespace sluice
