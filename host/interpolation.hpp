// References in a manifest's strings, resolved when it is loaded:
//   ${NAME}            the environment variable NAME (an error when unset)
//   ${NAME:-default}   NAME, or `default` when NAME is unset or empty
//   ${file:PATH}       the contents of a file (a mounted secret), relative to
//                      the manifest, one trailing line break removed
//   $${                a literal "${"
// Anywhere in a string value (object keys are left as written), so one
// manifest serves several environments.
#pragma once

#include <boost/json.hpp>

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace sluice {

// Looks a variable up: nullptr when unset (std::getenv by default).
using EnvLookup = std::function<const char *(const std::string &name)>;

// `text` with its references resolved, or nullopt with `error` saying which
// reference failed and why ("${INPUT}: environment variable INPUT is not set
// ...").
std::optional<std::string> interpolate(std::string_view text, const std::string &base_dir, std::string &error,
                                       const EnvLookup &env = {});

// Resolves every string in `value` in place; each failure is added to
// `errors` as (JSON path under `path`, what is wrong).
void interpolate_all(boost::json::value &value, const std::string &base_dir, const std::string &path,
                     std::vector<std::pair<std::string, std::string>> &errors, const EnvLookup &env = {});

} // namespace sluice
