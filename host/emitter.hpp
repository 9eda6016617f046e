// The host side of sluice_emitter: collects what a plugin emits, forwards,
// rejects, fails or drops during one call into output batches and a failure
// list, and keeps the ledger of which input records the call accounted for.
#pragma once

#include "batch.hpp"

#include <sluice/plugin.h>

#include <string>
#include <vector>

namespace sluice {

enum class FailureKind {
    rejected,   // failed a rule (reject)
    failed,     // could not be processed (fail, or a failed batch)
    unreadable, // an extractor could not make a record of its input (emit_failed)
    undelivered, // the stage's environment failed (SLUICE_RETRY to the end):
                 // not the record's fault, so never skipped, dead-lettered or
                 // acknowledged; counted as an error and the run fails
};

struct Failure {
    FailureKind kind;
    sluice_record record; // bytes live in the input batch or FailureBatch::storage
    std::string message;
    uint32_t attempts = 1; // tries it has had
    bool retryable = true; // false: trying again cannot help (a poison record, a plugin bug)
};

struct FailureBatch {
    std::vector<Failure> items;
    std::shared_ptr<BatchStorage> storage = std::make_shared<BatchStorage>();
};

class BatchEmitter {
public:
    // `outputs` has one batch per stage output; results are appended to them.
    BatchEmitter(std::vector<Batch> &outputs, FailureBatch &failures);

    // Inputs for the next call: records [offset, offset+count) of `input`
    // (nullptr for pull and flush). Indexes from the plugin are relative.
    void set_input(const Batch *input, uint32_t offset, uint32_t count);
    const sluice_emitter *raw() const { return &raw_; }
    uint32_t output_count() const { return uint32_t(outputs_.size()); }

    // Accounting (plugin.h, 8): the inputs of the current call that were
    // neither forwarded, emitted from, rejected, failed nor dropped.
    std::vector<uint32_t> unaccounted() const;
    uint32_t dropped() const { return dropped_; } // dropped on purpose in this call
    // The first call the host refused since set_input ("" when none), e.g.
    // "emit to output 7 (the stage has 1)".
    const std::string &refusal() const { return refusal_; }
    // A call refused elsewhere (a call log replayed): kept like our own.
    void note_refusal(std::string what) { refuse(std::move(what)); }
    // The host extension sluice.drop/1, valid for any BatchEmitter.
    static const sluice_drop_ext *drop_extension();

private:
    static sluice_status emit(const sluice_emitter *, uint32_t, uint32_t, const sluice_record *);
    static sluice_status forward(const sluice_emitter *, uint32_t, uint32_t);
    static sluice_status reject(const sluice_emitter *, uint32_t, const char *, size_t);
    static sluice_status fail(const sluice_emitter *, uint32_t, const char *, size_t);
    static sluice_status emit_failed(const sluice_emitter *, const sluice_record *, const char *, size_t);
    static sluice_status drop(const sluice_emitter *, uint32_t);

    const sluice_record *input_record(uint32_t index) const;
    sluice_status add_failure(FailureKind kind, uint32_t index, const char *msg, size_t len);
    // Marks input `index` accounted for; false (and a refusal) when out of range.
    bool account(uint32_t index, const char *call);
    sluice_status refuse(std::string what);

    sluice_emitter raw_;
    std::vector<Batch> &outputs_;
    FailureBatch &failures_;
    const Batch *input_ = nullptr;
    uint32_t offset_ = 0, count_ = 0;
    std::vector<uint8_t> accounted_;
    uint32_t dropped_ = 0;
    std::string refusal_;
};

// Copies `count` attributes and their strings into `arena`.
const sluice_attr *copy_attrs(ByteArena &arena, const sluice_attr *attrs, uint32_t count);

} // namespace sluice
