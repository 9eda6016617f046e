// `sluice tap ADDR STAGE[.OUTPUT] [--limit N]`: prints, live, the records a
// stage of a running pipeline sends on an output, read from the pipeline's
// admin endpoint (/tap). The token, when the endpoint wants one, comes from
// $SLUICE_ADMIN_TOKEN.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <string>

namespace sluice {

// Returns the exit code: 0 when the stream ended (limit reached, run over),
// 1 when the endpoint refused or could not be reached (one line on `err`).
int run_tap(const std::string &address, const std::string &stage_output, uint64_t limit, std::ostream &out,
            std::ostream &err);

} // namespace sluice
