#include "failure_router.hpp"

#include "kinds.hpp"

#include <sluice/dead_letter.hpp>

#include <spdlog/spdlog.h>

namespace sluice {

namespace {

// Failures logged at warn level per stage; the rest go to debug (all are
// counted in the report).
constexpr uint64_t kLoggedAtWarn = 20;

std::string_view attr_value(const sluice_record &r, std::string_view key) {
    for (uint32_t i = 0; i < r.attr_count; ++i)
        if (std::string_view(r.attrs[i].key, r.attrs[i].key_len) == key)
            return {r.attrs[i].value, r.attrs[i].value_len};
    return {};
}

} // namespace

FailureRouter::FailureRouter(const StageSpec &spec, PipelineControl &control, StageMetrics &metrics)
    : spec_(spec), control_(control), metrics_(metrics) {}

void FailureRouter::log(const Failure &f) {
    const bool rejected = f.kind == FailureKind::rejected;
    uint64_t n = logged_.fetch_add(1, std::memory_order_relaxed);
    auto level = n < kLoggedAtWarn ? spdlog::level::warn : spdlog::level::debug;
    if (!spdlog::should_log(level)) return;
    std::string_view source = attr_value(f.record, SLUICE_ATTR_SOURCE);
    std::string_view line = attr_value(f.record, SLUICE_ATTR_SOURCE_LINE);
    std::string where;
    if (!source.empty()) where = " (" + std::string(source) + (line.empty() ? "" : ":" + std::string(line)) + ")";
    const char *what = rejected                                ? "rejected"
                       : f.kind == FailureKind::unreadable  ? "could not read"
                       : f.kind == FailureKind::undelivered ? "could not deliver"
                                                            : "failed";
    std::string tries = f.attempts > 1 ? " after " + std::to_string(f.attempts) + " attempts" : "";
    spdlog::log(level, "[{}] {} record {}{}{}: {}", spec_.id, what, f.record.id, where, tries, f.message);
    if (n + 1 == kLoggedAtWarn)
        spdlog::warn("[{}] further failures are logged at debug level; the report counts them all", spec_.id);
}

bool FailureRouter::route(const FailureBatch &failures, WorkerCounters &c, const std::vector<AckRef> &acks) {
    const ErrorPolicy &policy = spec_.on_error;
    Batch dead;
    dead.seq = BatchQueue::kTailSeq;
    dead.acks = acks; // acknowledged once the dead letters are loaded
    for (const auto &f : failures.items) {
        const bool rejected = f.kind == FailureKind::rejected;
        metrics_.reason(rejected, f.message);
        log(f);
        if (rejected) continue;
        if (f.kind == FailureKind::undelivered) {
            // Neither skipped nor dead-lettered: the saved position must
            // stay before it, so the next run reads it again.
            for (const AckRef &a : acks) a->poison();
            continue;
        }
        if (policy.then == ErrorPolicy::Then::dead_letter && dead_letter_) {
            dead_letter::Letter letter;
            letter.payload = {f.record.payload, f.record.payload_len};
            letter.payload_is_json = f.record.content_type == nullptr ||
                                     std::string_view(f.record.content_type) == SLUICE_CONTENT_JSON;
            letter.record_id = f.record.id;
            letter.stage = spec_.id;
            letter.plugin = spec_.plugin;
            letter.kind = f.kind == FailureKind::unreadable ? "unreadable" : "failed";
            letter.error = f.message;
            letter.attempts = f.attempts;
            for (uint32_t i = 0; i < f.record.attr_count; ++i)
                letter.attributes.emplace_back(std::string_view(f.record.attrs[i].key, f.record.attrs[i].key_len),
                                               std::string_view(f.record.attrs[i].value, f.record.attrs[i].value_len));
            std::string envelope = dead_letter::write(letter);
            sluice_record r{};
            r.id = f.record.id;
            r.payload = dead.storage->arena.copy(envelope);
            r.payload_len = envelope.size();
            dead.records.push_back(r);
        } else if (policy.then == ErrorPolicy::Then::fail) {
            // Not delivered: the saved position must stay before it.
            for (const AckRef &a : acks) a->poison();
            control_.fail("stage '" + spec_.id + "' (" + std::string(kind_name(spec_.kind)) + " " + spec_.plugin +
                          "): record " + std::to_string(f.record.id) + " failed and on_error is fail: " + f.message);
        }
    }
    if (dead.records.empty()) return true;
    c.add(c.dead_lettered, dead.records.size());
    return dead_letter_->push(std::move(dead));
}
} // namespace sluice
