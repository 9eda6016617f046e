// Commands of the command line that live in files of their own (cli.cpp
// parses the options and dispatches).
#pragma once

#include <string>

namespace sluice {

// sluice convert IN [OUT] [--to json|yaml] [--force]
int cmd_convert(const std::string &in_path, const std::string &out_path, const std::string &to, bool force);

} // namespace sluice
