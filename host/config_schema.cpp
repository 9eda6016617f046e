#include "config_schema.hpp"

#include <sluice/json_schema.hpp>

namespace sluice {

std::vector<std::string> check_against_schema(const boost::json::value &value, const boost::json::value &schema,
                                              const std::string &path) {
    return json::check_schema(value, schema, path, /*closed_objects=*/true);
}

} // namespace sluice
