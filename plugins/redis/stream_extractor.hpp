// Extractor "redis": reads a Redis stream as a member of a consumer group.
// Entries are acknowledged (XACK) only once the pipeline has delivered them
// everywhere; entries a dead consumer left pending are claimed (XAUTOCLAIM);
// an entry delivered too often is dead-lettered. See README.md.
#pragma once

#include "redis_connection.hpp"

#include <sluice/config_spec.hpp>
#include <sluice/json.hpp>
#include <sluice/plugin.hpp>

#include <chrono>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace sluice::plugins::redis {

class StreamExtractor {
public:
    static constexpr sluice_kind kind = SLUICE_KIND_EXTRACTOR;
    static constexpr const char *name = "redis";
    static constexpr const char *version = "1.0.0";
    static constexpr const char *description =
        "Reads a Redis stream in a consumer group (XREADGROUP); XACK only once records are delivered, takes over "
        "entries a dead consumer left pending (XAUTOCLAIM), dead-letters entries delivered too often.";
    static constexpr uint64_t capabilities = 0;
    static config::Spec config_spec();

    explicit StreamExtractor(const Context &ctx);
    // sluice.preflight/1: the server answers (and takes the password).
    std::vector<std::string> preflight() const { return stream_preflight(endpoint_, stream_); }
    void start();
    bool pull(Emitter &out, uint32_t max_records);
    // Graceful stop: acknowledges what was delivered; the rest stays pending
    // in the group for this consumer (read again when it comes back) or for
    // the others (claimed after claim_idle_ms).
    void stop();
    // sluice.checkpoint/1: the number of the pull. The group keeps the real
    // position on the server, so an old position is ignored on restore.
    std::string checkpoint() const { return std::to_string(pulls_made_); }
    void restore(std::string_view) {}
    // sluice.acknowledged/1: the entries of every pull up to that number are
    // delivered; they are XACKed with the next command sent.
    void acknowledged(std::string_view position);
    const void *extension(const char *id) const;

private:
    struct Entry {
        std::string id;
        const redisReply *fields = nullptr; // flat [field, value, ...] array (nil: deleted)
    };
    void connect();
    // Appends the XACK of every acknowledged entry to `commands`; returns
    // the ids sent (given back if the command fails).
    std::vector<std::string> take_acks(CommandBuffer &commands);
    void give_back(std::vector<std::string> ids);
    // Emits `entries` (from one reply) as records; `counted` entries have
    // their delivery count checked against max_deliveries.
    void emit(Emitter &out, const std::vector<Entry> &entries, bool counted);
    // Delivery counts of this consumer's pending entries in [first, last].
    std::vector<std::pair<std::string, int64_t>> delivery_counts(const std::string &first, const std::string &last,
                                                                 size_t count);

    Host host_;
    Endpoint endpoint_;
    std::string stream_, group_, consumer_, start_id_, body_field_, content_type_, source_;
    bool whole_entry_ = false, create_group_ = true;
    std::chrono::milliseconds block_{500}, claim_idle_{30000}, claim_interval_{1000};
    int64_t max_deliveries_ = 5;
    std::unique_ptr<Connection> conn_;
    bool reading_own_pending_ = true; // after start: this consumer's entries left pending by an earlier run
    std::string own_pending_cursor_ = "0";
    std::string claim_cursor_ = "0-0";
    std::chrono::steady_clock::time_point next_claim_{};
    json::RecordParser parser_;
    std::string payload_;

    // The entries of each pull not yet acknowledged, and those acknowledged
    // but not yet XACKed: filled by pull, emptied by acknowledged (any thread).
    mutable std::mutex mutex_;
    uint64_t pulls_made_ = 0;
    std::deque<std::pair<uint64_t, std::vector<std::string>>> in_flight_;
    std::vector<std::string> to_ack_;
};

} // namespace sluice::plugins::redis
