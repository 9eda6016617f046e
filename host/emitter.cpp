#include "emitter.hpp"

#include <cstring>
#include <new>

namespace sluice {

const sluice_attr *copy_attrs(ByteArena &arena, const sluice_attr *attrs, uint32_t count) {
    if (count == 0 || !attrs) return nullptr;
    // One piece of the arena for the array and all its strings (a record
    // with a source path and line would otherwise take five).
    size_t bytes = sizeof(sluice_attr) * count;
    for (uint32_t i = 0; i < count; ++i) bytes += attrs[i].key_len + attrs[i].value_len;
    char *block = arena.allocate(bytes, alignof(sluice_attr));
    auto *out = reinterpret_cast<sluice_attr *>(block);
    char *text = block + sizeof(sluice_attr) * count;
    auto put = [&text](const char *s, size_t n) {
        if (n) std::memcpy(text, s, n);
        const char *at = text;
        text += n;
        return at;
    };
    for (uint32_t i = 0; i < count; ++i) {
        const char *k = put(attrs[i].key, attrs[i].key_len);
        const char *v = put(attrs[i].value, attrs[i].value_len);
        new (&out[i]) sluice_attr{k, attrs[i].key_len, v, attrs[i].value_len};
    }
    return out;
}

BatchEmitter::BatchEmitter(std::vector<Batch> &outputs, FailureBatch &failures)
    : outputs_(outputs), failures_(failures) {
    raw_.emitter_data = this;
    raw_.emit = &BatchEmitter::emit;
    raw_.forward = &BatchEmitter::forward;
    raw_.reject = &BatchEmitter::reject;
    raw_.fail = &BatchEmitter::fail;
    raw_.emit_failed = &BatchEmitter::emit_failed;
}

void BatchEmitter::set_input(const Batch *input, uint32_t offset, uint32_t count) {
    input_ = input;
    offset_ = offset;
    count_ = input ? count : 0;
    accounted_.assign(count_, 0);
    dropped_ = 0;
    refusal_.clear();
}

std::vector<uint32_t> BatchEmitter::unaccounted() const {
    std::vector<uint32_t> out;
    for (uint32_t i = 0; i < count_; ++i)
        if (!accounted_[i]) out.push_back(i);
    return out;
}

sluice_status BatchEmitter::refuse(std::string what) {
    if (refusal_.empty()) refusal_ = std::move(what);
    return SLUICE_ERROR;
}

bool BatchEmitter::account(uint32_t index, const char *call) {
    if (index < count_) {
        accounted_[index] = 1;
        return true;
    }
    refuse(std::string(call) + " of input " + std::to_string(index) + " (the call has " + std::to_string(count_) +
           (count_ == 1 ? " record)" : " records)"));
    return false;
}

sluice_status BatchEmitter::drop(const sluice_emitter *e, uint32_t input_index) {
    if (!e || !e->emitter_data) return SLUICE_ERROR;
    BatchEmitter &s = *static_cast<BatchEmitter *>(e->emitter_data);
    if (!s.account(input_index, "drop")) return SLUICE_ERROR;
    ++s.dropped_;
    return SLUICE_OK;
}

const sluice_drop_ext *BatchEmitter::drop_extension() {
    static const sluice_drop_ext ext{sizeof(sluice_drop_ext), 0, &BatchEmitter::drop};
    return &ext;
}

const sluice_record *BatchEmitter::input_record(uint32_t index) const {
    if (!input_ || index >= count_) return nullptr;
    return &input_->records[offset_ + index];
}

static BatchEmitter &self(const sluice_emitter *e) { return *static_cast<BatchEmitter *>(e->emitter_data); }

sluice_status BatchEmitter::emit(const sluice_emitter *e, uint32_t output, uint32_t input_index,
                                 const sluice_record *rec) {
    BatchEmitter &s = self(e);
    if (!rec || (!rec->payload && rec->payload_len)) return s.refuse("emit of a record without a payload");
    if (output >= s.outputs_.size())
        return s.refuse("emit to output " + std::to_string(output) + " (the stage has " +
                        std::to_string(s.outputs_.size()) + ")");
    const sluice_record *in = nullptr;
    if (input_index != SLUICE_NO_INPUT) {
        if (!s.account(input_index, "emit from")) return SLUICE_ERROR;
        in = s.input_record(input_index);
    }
    Batch &out = s.outputs_[output];
    ByteArena &arena = out.storage->arena;
    sluice_record r{};
    r.id = in ? in->id : 0;
    r.payload = arena.copy({rec->payload, rec->payload_len});
    r.payload_len = rec->payload_len;
    r.content_type = intern_content_type(rec->content_type);
    if (in && rec->attrs == in->attrs && rec->attr_count == in->attr_count) {
        // The input's own attributes: share them instead of copying.
        r.attrs = in->attrs;
        r.attr_count = in->attr_count;
        if (r.attr_count) out.keep(s.input_->storage);
    } else {
        r.attrs = copy_attrs(arena, rec->attrs, rec->attr_count);
        r.attr_count = r.attrs ? rec->attr_count : 0;
    }
    out.records.push_back(r);
    return SLUICE_OK;
}

sluice_status BatchEmitter::forward(const sluice_emitter *e, uint32_t output, uint32_t input_index) {
    BatchEmitter &s = self(e);
    if (output >= s.outputs_.size())
        return s.refuse("forward to output " + std::to_string(output) + " (the stage has " +
                        std::to_string(s.outputs_.size()) + ")");
    if (!s.account(input_index, "forward")) return SLUICE_ERROR;
    const sluice_record *in = s.input_record(input_index);
    Batch &out = s.outputs_[output];
    out.keep(s.input_->storage);
    out.records.push_back(*in);
    return SLUICE_OK;
}

sluice_status BatchEmitter::add_failure(FailureKind kind, uint32_t index, const char *msg, size_t len) {
    if (!account(index, kind == FailureKind::rejected ? "reject" : "fail")) return SLUICE_ERROR;
    const sluice_record *in = input_record(index);
    failures_.items.push_back(Failure{kind, *in, std::string(msg ? msg : "", msg ? len : 0)});
    auto &parents = failures_.storage->parents;
    if (parents.empty() || parents.back() != input_->storage) parents.push_back(input_->storage);
    return SLUICE_OK;
}

sluice_status BatchEmitter::reject(const sluice_emitter *e, uint32_t input_index, const char *reason, size_t len) {
    return self(e).add_failure(FailureKind::rejected, input_index, reason, len);
}

sluice_status BatchEmitter::fail(const sluice_emitter *e, uint32_t input_index, const char *message, size_t len) {
    return self(e).add_failure(FailureKind::failed, input_index, message, len);
}

sluice_status BatchEmitter::emit_failed(const sluice_emitter *e, const sluice_record *raw, const char *message,
                                        size_t len) {
    BatchEmitter &s = self(e);
    if (!raw || (!raw->payload && raw->payload_len)) return s.refuse("emit_failed of a record without a payload");
    ByteArena &arena = s.failures_.storage->arena;
    sluice_record r{};
    r.payload = arena.copy({raw->payload, raw->payload_len});
    r.payload_len = raw->payload_len;
    r.content_type = intern_content_type(raw->content_type);
    r.attrs = copy_attrs(arena, raw->attrs, raw->attr_count);
    r.attr_count = r.attrs ? raw->attr_count : 0;
    s.failures_.items.push_back(Failure{FailureKind::unreadable, r, std::string(message ? message : "", message ? len : 0)});
    return SLUICE_OK;
}

} // namespace sluice
