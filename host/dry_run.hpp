// `sluice run --dry-run [--limit N]`: the pipeline as written, on its real
// input, except that no loader writes anything. Each loader is replaced by a
// capture stage that prints what it would have written (one JSON line per
// record: {"loader": ID, "id": N, "record": ...}), extractors read at most N
// records each, no delivery state is read or saved, and no extractor is told
// its records were delivered (a stream's entries stay pending, a topic's
// offsets uncommitted), so the run has no side effect on the destinations
// or on the next real run.
#pragma once

#include "built_in_stages.hpp"
#include "manifest.hpp"

#include <cstdint>
#include <mutex>
#include <ostream>

namespace sluice {

// Rewrites `m` for a dry run whose loaders hand their records to the sink
// registered as `sink`.
void prepare_dry_run(Manifest &m, const std::string &sink, uint64_t limit);

// Replaces the stage `spec` (a loader) with a capture stage feeding `sink`.
void capture_instead(StageSpec &spec, const std::string &sink);

// Prints what each loader would write, a line per record.
class DryRunPrinter : public RecordSink {
public:
    explicit DryRunPrinter(std::ostream &out) : out_(out) {}
    void take(const std::string &stage, const sluice_record &record) override;

private:
    std::mutex mutex_;
    std::ostream &out_;
};

} // namespace sluice
