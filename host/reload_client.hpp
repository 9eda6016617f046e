// `sluice reload ADDR:PORT`: asks a running pipeline (its admin endpoint,
// POST /reload) to read its manifest again and apply it; prints what
// changed or why it was refused. The token, when the endpoint wants one,
// comes from $SLUICE_ADMIN_TOKEN.
#pragma once

#include <iosfwd>
#include <string>

namespace sluice {

// 0 applied (or nothing changed), 1 refused (the pipeline runs as before),
// 2 the endpoint could not be reached or answered otherwise.
int run_reload(const std::string &address, std::ostream &out, std::ostream &err);

} // namespace sluice
