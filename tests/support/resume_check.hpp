// The check every resumable extractor must pass: stopped after any pull and
// restored from the position it gave, it yields exactly what one
// uninterrupted run does (nothing lost, nothing twice).
#pragma once

#include <string>

namespace sluice::test {

// Runs extractor `plugin` with `config` (paths relative to `base`) once
// through, then once per cut point (after pull 0, 1, 2, ... of 2 records),
// restarting from the saved position; compares the records and failures as
// multisets with GoogleTest expectations.
void expect_resumes_exactly(const std::string &plugin, const std::string &config, const std::string &base);

} // namespace sluice::test
