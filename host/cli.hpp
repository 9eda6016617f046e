// The `sluice` command line: run, validate, plugins, --version, --help.
#pragma once

namespace sluice {

// Exit codes: 0 success, 1 the run failed, 2 bad usage, manifest or plugin.
int cli_main(int argc, char **argv);

} // namespace sluice
