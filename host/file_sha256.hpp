// The SHA-256 of a file (OpenSSL), as a pinned plugin is identified: the
// manifest's "sha256" of a stage, `sluice plugins --json`, `sluice pin`.
#pragma once

#include <string>

namespace sluice {

// Lowercase hex; throws std::runtime_error("PATH: cannot be read: ...").
std::string file_sha256(const std::string &path);

// Whether `text` looks like one (64 hex digits, either case).
bool is_sha256_hex(const std::string &text);

} // namespace sluice
