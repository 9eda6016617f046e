#include "dry_run.hpp"

#include <boost/json.hpp>

namespace sluice {

namespace bj = boost::json;

void capture_instead(StageSpec &spec, const std::string &sink) {
    spec.plugin = kCaptureStage;
    spec.library.reset();
    spec.config = capture_stage_config(sink);
    spec.raw_config = spec.config;
    spec.isolation = Isolation{}; // a built-in stage runs in the host
    spec.threads = 1;
    spec.timeout_ms = 0;
}

void prepare_dry_run(Manifest &m, const std::string &sink, uint64_t limit) {
    for (StageSpec &s : m.stages) {
        if (s.kind == SLUICE_KIND_LOADER) capture_instead(s, sink);
        else if (s.kind == SLUICE_KIND_EXTRACTOR) {
            s.record_limit = limit;
            s.confirm_delivery = false;
        }
    }
    // Neither resume from nor move the saved positions.
    m.state_dir.clear();
}

void DryRunPrinter::take(const std::string &stage, const sluice_record &record) {
    std::string_view payload(record.payload, record.payload_len);
    bool json = !record.content_type || std::string_view(record.content_type) == SLUICE_CONTENT_JSON;
    boost::system::error_code ec;
    if (json) bj::parse(payload, ec);
    std::string text = bj::serialize(bj::object{{"loader", stage}, {"id", record.id}});
    text.pop_back(); // the closing brace: the record follows as written
    if (json && !ec) {
        // As the loader got it, not as Boost.JSON would write it again.
        text += ",\"record\":";
        text += payload;
        text += "}";
    } else {
        text += "," + bj::serialize(bj::object{{"content_type", record.content_type ? record.content_type
                                                                                    : SLUICE_CONTENT_JSON},
                                               {"text", payload}})
                          .substr(1);
    }
    text += '\n';
    std::lock_guard<std::mutex> lock(mutex_);
    out_ << text;
    out_.flush();
}

} // namespace sluice
