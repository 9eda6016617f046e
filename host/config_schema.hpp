// Checks a stage's config against the JSON Schema subset its plugin declares
// (sluice_stage_descriptor.config_schema), so that every plugin gets the same
// precise messages for unknown keys, wrong types and missing values.
#pragma once

#include <boost/json.hpp>

#include <string>
#include <vector>

namespace sluice {

// Supported keywords: type (string, integer, number, boolean, object, array,
// null, or a list of them), properties, required, additionalProperties
// (false unless true or a schema), items, enum, minimum, maximum, minLength.
// Unknown keywords ("description", "default", "examples") are ignored.
// Returns one message per problem: "<path>: <what>", path like
// "/stages/1/config/format".
std::vector<std::string> check_against_schema(const boost::json::value &value,
                                              const boost::json::value &schema,
                                              const std::string &path);

} // namespace sluice
