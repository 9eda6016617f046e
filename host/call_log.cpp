#include "call_log.hpp"

#include "emitter.hpp"

#include <cstring>

namespace sluice {

namespace {

enum Op : uint8_t { kEmit = 1, kForward, kReject, kFail, kEmitFailed, kDrop, kRefused };
constexpr uint32_t kNoContentType = 0xFFFFFFFFu;
constexpr uint8_t kInheritAttrs = 1;

void put32(std::string &out, uint32_t v) { out.append(reinterpret_cast<const char *>(&v), 4); }
void put64(std::string &out, uint64_t v) { out.append(reinterpret_cast<const char *>(&v), 8); }
void put_bytes(std::string &out, const char *p, size_t n) {
    put32(out, uint32_t(n));
    if (n) out.append(p, n);
}

void put_record(std::string &out, const sluice_record &r, bool with_attrs) {
    put64(out, r.id);
    put_bytes(out, r.payload, r.payload_len);
    if (r.content_type) {
        size_t n = std::strlen(r.content_type);
        put32(out, uint32_t(n));
        out.append(r.content_type, n + 1); // with its NUL: read in place
    } else {
        put32(out, kNoContentType);
    }
    const uint32_t attrs = with_attrs && r.attrs ? r.attr_count : 0;
    put32(out, attrs);
    for (uint32_t i = 0; i < attrs; ++i) {
        put_bytes(out, r.attrs[i].key, r.attrs[i].key_len);
        put_bytes(out, r.attrs[i].value, r.attrs[i].value_len);
    }
}

// Bounds-checked reading: the bytes may come from a process that crashed
// half-way or from a plugin that scribbled over shared memory.
struct Reader {
    std::string_view in;
    size_t at = 0;
    bool ok = true;

    bool has(size_t n) {
        if (!ok || in.size() - at < n) ok = false;
        return ok;
    }
    uint8_t u8() { return has(1) ? uint8_t(in[at++]) : 0; }
    uint32_t u32() {
        uint32_t v = 0;
        if (has(4)) std::memcpy(&v, in.data() + at, 4), at += 4;
        return v;
    }
    uint64_t u64() {
        uint64_t v = 0;
        if (has(8)) std::memcpy(&v, in.data() + at, 8), at += 8;
        return v;
    }
    std::string_view bytes() {
        uint32_t n = u32();
        if (!has(n)) return {};
        std::string_view s = in.substr(at, n);
        at += n;
        return s;
    }
    bool done() const { return ok && at == in.size(); }
};

bool read_record(Reader &r, sluice_record &rec, std::vector<sluice_attr> &attrs) {
    rec = sluice_record{};
    rec.id = r.u64();
    std::string_view payload = r.bytes();
    rec.payload = payload.data();
    rec.payload_len = payload.size();
    uint32_t ct = r.u32();
    if (ct != kNoContentType) {
        if (!r.has(size_t(ct) + 1) || r.in[r.at + ct] != '\0') return r.ok = false;
        rec.content_type = r.in.data() + r.at;
        r.at += size_t(ct) + 1;
    }
    uint32_t n = r.u32();
    if (!r.ok || n > r.in.size()) return r.ok = false; // each attribute takes bytes
    for (uint32_t i = 0; i < n && r.ok; ++i) {
        std::string_view k = r.bytes(), v = r.bytes();
        attrs.push_back(sluice_attr{k.data(), k.size(), v.data(), v.size()});
    }
    rec.attr_count = n;
    return r.ok;
}

} // namespace

void encode_records(std::string &out, const sluice_record *records, uint32_t count) {
    put32(out, count);
    for (uint32_t i = 0; i < count; ++i) put_record(out, records[i], true);
}

bool RecordsView::decode(std::string_view bytes, std::string &problem) {
    records_.clear();
    attrs_.clear();
    Reader r{bytes};
    uint32_t n = r.u32();
    if (r.ok && n > bytes.size()) r.ok = false;
    records_.resize(r.ok ? n : 0);
    std::vector<uint32_t> first_attr(records_.size());
    for (uint32_t i = 0; i < records_.size() && r.ok; ++i) {
        first_attr[i] = uint32_t(attrs_.size());
        read_record(r, records_[i], attrs_);
    }
    if (!r.done()) {
        problem = "a malformed record batch";
        records_.clear();
        return false;
    }
    // Attribute pointers once the vector has stopped growing.
    for (uint32_t i = 0; i < records_.size(); ++i)
        records_[i].attrs = records_[i].attr_count ? attrs_.data() + first_attr[i] : nullptr;
    return true;
}

// --- the recorder ------------------------------------------------------------

static CallRecorder &recorder(const sluice_emitter *e) { return *static_cast<CallRecorder *>(e->emitter_data); }

CallRecorder::CallRecorder(std::string &log, uint32_t output_count, const sluice_record *inputs, uint32_t input_count)
    : log_(log), output_count_(output_count), inputs_(inputs), input_count_(inputs ? input_count : 0) {
    raw_.emitter_data = this;
    raw_.emit = &CallRecorder::emit;
    raw_.forward = &CallRecorder::forward;
    raw_.reject = &CallRecorder::reject;
    raw_.fail = &CallRecorder::fail;
    raw_.emit_failed = &CallRecorder::emit_failed;
}

const sluice_drop_ext *CallRecorder::drop_extension() {
    static const sluice_drop_ext ext{sizeof(sluice_drop_ext), 0, &CallRecorder::drop};
    return &ext;
}

void CallRecorder::head(uint8_t op, uint32_t output, uint32_t index) {
    log_.push_back(char(op));
    put32(log_, output);
    put32(log_, index);
}

sluice_status CallRecorder::refused(std::string_view what) {
    head(kRefused, 0, 0);
    put_bytes(log_, what.data(), what.size());
    return SLUICE_ERROR;
}

// Refused calls are logged as the calls they were: replayed, the host's
// emitter refuses them again and notes why.
sluice_status CallRecorder::emit(const sluice_emitter *e, uint32_t output, uint32_t input_index,
                                 const sluice_record *rec) {
    CallRecorder &s = recorder(e);
    if (!rec || (!rec->payload && rec->payload_len)) return s.refused("emit of a record without a payload");
    const bool input_ok = input_index == SLUICE_NO_INPUT || input_index < s.input_count_;
    const bool inherit = input_ok && input_index != SLUICE_NO_INPUT && rec->attr_count &&
                         rec->attrs == s.inputs_[input_index].attrs &&
                         rec->attr_count == s.inputs_[input_index].attr_count;
    s.head(kEmit, output, input_index);
    s.log_.push_back(char(inherit ? kInheritAttrs : 0));
    put_record(s.log_, *rec, !inherit);
    return output < s.output_count_ && input_ok ? SLUICE_OK : SLUICE_ERROR;
}

sluice_status CallRecorder::forward(const sluice_emitter *e, uint32_t output, uint32_t input_index) {
    CallRecorder &s = recorder(e);
    s.head(kForward, output, input_index);
    return output < s.output_count_ && input_index < s.input_count_ ? SLUICE_OK : SLUICE_ERROR;
}

sluice_status CallRecorder::reject(const sluice_emitter *e, uint32_t input_index, const char *reason, size_t len) {
    CallRecorder &s = recorder(e);
    s.head(kReject, 0, input_index);
    put_bytes(s.log_, reason, reason ? len : 0);
    return input_index < s.input_count_ ? SLUICE_OK : SLUICE_ERROR;
}

sluice_status CallRecorder::fail(const sluice_emitter *e, uint32_t input_index, const char *message, size_t len) {
    CallRecorder &s = recorder(e);
    s.head(kFail, 0, input_index);
    put_bytes(s.log_, message, message ? len : 0);
    return input_index < s.input_count_ ? SLUICE_OK : SLUICE_ERROR;
}

sluice_status CallRecorder::emit_failed(const sluice_emitter *e, const sluice_record *raw, const char *message,
                                        size_t len) {
    CallRecorder &s = recorder(e);
    if (!raw || (!raw->payload && raw->payload_len)) return s.refused("emit_failed of a record without a payload");
    s.head(kEmitFailed, 0, 0);
    put_record(s.log_, *raw, true);
    put_bytes(s.log_, message, message ? len : 0);
    return SLUICE_OK;
}

sluice_status CallRecorder::drop(const sluice_emitter *e, uint32_t input_index) {
    if (!e || !e->emitter_data) return SLUICE_ERROR;
    CallRecorder &s = recorder(e);
    s.head(kDrop, 0, input_index);
    return input_index < s.input_count_ ? SLUICE_OK : SLUICE_ERROR;
}

// --- replay ------------------------------------------------------------------

bool replay_calls(std::string_view log, BatchEmitter &to, const sluice_record *inputs, uint32_t input_count,
                  std::string &problem) {
    const sluice_emitter *out = to.raw();
    Reader r{log};
    std::vector<sluice_attr> attrs;
    while (r.ok && r.at < log.size()) {
        const uint8_t op = r.u8();
        const uint32_t output = r.u32(), index = r.u32();
        attrs.clear();
        sluice_record rec{};
        switch (op) {
        case kEmit: {
            const bool inherit = r.u8() & kInheritAttrs;
            if (!read_record(r, rec, attrs)) break;
            if (inherit) {
                if (index >= input_count) return problem = "a malformed call log", false;
                rec.attrs = inputs[index].attrs;
                rec.attr_count = inputs[index].attr_count;
            } else {
                rec.attrs = attrs.empty() ? nullptr : attrs.data();
            }
            out->emit(out, output, index, &rec);
            break;
        }
        case kForward: out->forward(out, output, index); break;
        case kReject:
        case kFail: {
            std::string_view m = r.bytes();
            if (!r.ok) break;
            (op == kReject ? out->reject : out->fail)(out, index, m.data(), m.size());
            break;
        }
        case kEmitFailed: {
            if (!read_record(r, rec, attrs)) break;
            rec.attrs = attrs.empty() ? nullptr : attrs.data();
            std::string_view m = r.bytes();
            if (r.ok) out->emit_failed(out, &rec, m.data(), m.size());
            break;
        }
        case kDrop: BatchEmitter::drop_extension()->drop(out, index); break;
        case kRefused: {
            std::string_view m = r.bytes();
            if (r.ok) to.note_refusal(std::string(m));
            break;
        }
        default: r.ok = false;
        }
    }
    if (!r.ok) problem = "a malformed call log";
    return r.ok;
}

} // namespace sluice
