// Stages built into the host rather than loaded from a plugin, used by
// `sluice test` and `sluice run --dry-run` in place of a pipeline's real
// sources and destinations:
//   "sluice:records"  an extractor emitting the records its config lists
//   "sluice:capture"  a loader handing every record it receives to a
//                     RecordSink (registered by name) instead of writing it
// They always run in the host's process and are never listed as plugins.
#pragma once

#include <sluice/plugin.h>

#include <boost/json.hpp>

#include <memory>
#include <string>
#include <vector>

namespace sluice {

inline constexpr const char *kRecordsStage = "sluice:records";
inline constexpr const char *kCaptureStage = "sluice:capture";

// Where a capture stage's records go. take() may be called from several
// threads at once.
class RecordSink {
public:
    virtual ~RecordSink() = default;
    virtual void take(const std::string &stage, const sluice_record &record) = 0;
};

// Capture stages find their sink by the name in their config ("sink"); the
// caller registers it before building the pipeline and keeps it registered
// while the pipeline exists.
void register_record_sink(const std::string &name, std::shared_ptr<RecordSink> sink);
void unregister_record_sink(const std::string &name);

// The config of a records stage: each record's payload (JSON text unless
// content_type says otherwise) and attributes.
struct GivenRecord {
    std::string payload;
    std::string content_type; // "" for JSON
    std::vector<std::pair<std::string, std::string>> attributes;
};
boost::json::object records_stage_config(const std::vector<GivenRecord> &records);
boost::json::object capture_stage_config(const std::string &sink);

const std::vector<const sluice_stage_descriptor *> &built_in_stage_descriptors();

} // namespace sluice
