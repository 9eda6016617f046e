// Commands of the command line that live in files of their own (cli.cpp
// parses the options and dispatches).
#pragma once

#include <string>
#include <vector>

namespace sluice {

// sluice convert IN [OUT] [--to json|yaml] [--force]
int cmd_convert(const std::string &in_path, const std::string &out_path, const std::string &to, bool force);

// sluice test MANIFEST TESTS... [--case TEXT]: 0 when every case passed, 1
// when one failed, 2 when a test file is unusable.
int cmd_test(const std::string &manifest, const std::vector<std::string> &test_files,
             const std::vector<std::string> &plugin_dirs, const std::string &only);

// sluice pin MANIFEST [--write]: the manifest with each stage's library
// SHA-256 ("sha256"), on stdout or (--write) in place. 0, or 2 when a
// stage's plugin cannot be found.
int cmd_pin(const std::string &path, const std::vector<std::string> &plugin_dirs, bool allow_untrusted, bool write);

} // namespace sluice
