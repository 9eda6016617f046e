// The TCP addresses this process listens on, read from /proc (the sockets
// among its open files, matched with /proc/self/net/tcp and tcp6): what a
// run running as root exposes, whichever stage or the admin endpoint opened
// it.
#pragma once

#include <string>
#include <vector>

namespace sluice {

// "127.0.0.1:8088", "[::]:9100" ...; empty when /proc cannot be read.
std::vector<std::string> listening_addresses();

} // namespace sluice
