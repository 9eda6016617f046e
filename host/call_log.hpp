// A plugin call's results as bytes: what it emitted, forwarded, rejected,
// failed and dropped, in order. A call that runs away from the host's
// emitter (in a worker process, or on a thread that may be abandoned) writes
// here; the host replays the log into its BatchEmitter once the call is
// known to have finished, so every result goes through the same checks and
// the same accounting as a direct call.
//
// Records travel in the same encoding (encode_records / RecordsView), so a
// worker reads its input batch in place from shared memory.
#pragma once

#include <sluice/plugin.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace sluice {

class BatchEmitter;

// Appends `count` records (payload, content type, attributes, id).
void encode_records(std::string &out, const sluice_record *records, uint32_t count);

// Records decoded in place: payloads and strings point into the bytes.
class RecordsView {
public:
    // False (and `problem`) when the bytes are not a valid encoding.
    bool decode(std::string_view bytes, std::string &problem);
    const sluice_record *data() const { return records_.data(); }
    uint32_t size() const { return uint32_t(records_.size()); }

private:
    std::vector<sluice_record> records_;
    std::vector<sluice_attr> attrs_;
};

// A sluice_emitter that logs each call. It answers the plugin exactly as the
// host's BatchEmitter would (SLUICE_ERROR for an unknown output or an index
// out of range), so a plugin cannot tell it from the host.
class CallRecorder {
public:
    // `inputs`: the call's input records (null for pull and flush).
    CallRecorder(std::string &log, uint32_t output_count, const sluice_record *inputs, uint32_t input_count);
    const sluice_emitter *raw() const { return &raw_; }
    // The host extension sluice.drop/1 for recorders.
    static const sluice_drop_ext *drop_extension();

private:
    static sluice_status emit(const sluice_emitter *, uint32_t, uint32_t, const sluice_record *);
    static sluice_status forward(const sluice_emitter *, uint32_t, uint32_t);
    static sluice_status reject(const sluice_emitter *, uint32_t, const char *, size_t);
    static sluice_status fail(const sluice_emitter *, uint32_t, const char *, size_t);
    static sluice_status emit_failed(const sluice_emitter *, const sluice_record *, const char *, size_t);
    static sluice_status drop(const sluice_emitter *, uint32_t);
    sluice_status refused(std::string_view what);
    void head(uint8_t op, uint32_t output, uint32_t index);

    sluice_emitter raw_{};
    std::string &log_;
    uint32_t output_count_;
    const sluice_record *inputs_;
    uint32_t input_count_;
};

// Replays `log` into `to` (set up with the same inputs the call had). False
// (and `problem`) when the log is malformed: then nothing is trusted.
bool replay_calls(std::string_view log, BatchEmitter &to, const sluice_record *inputs, uint32_t input_count,
                  std::string &problem);

} // namespace sluice
