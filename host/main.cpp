#include "cli.hpp"
#include "signal_watcher.hpp"

int main(int argc, char **argv) {
    // Before any thread exists, so that every thread inherits the mask and
    // only the signal watcher receives SIGINT/SIGTERM.
    sluice::block_stop_signals();
    return sluice::cli_main(argc, argv);
}
