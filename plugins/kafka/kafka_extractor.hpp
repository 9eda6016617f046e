// Extractor "kafka": a member of a Kafka consumer group (cooperative-sticky
// assignment) that commits, per partition, only offsets the pipeline has
// delivered, and on a rebalance hands partitions over only once their
// records in flight are delivered (or abandoned after rebalance_wait_ms).
// See README.md.
#pragma once

#include "kafka_client.hpp"

#include <sluice/config_spec.hpp>
#include <sluice/json.hpp>
#include <sluice/plugin.hpp>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <vector>

namespace sluice::plugins::kafka {

class KafkaExtractor {
public:
    static constexpr sluice_kind kind = SLUICE_KIND_EXTRACTOR;
    static constexpr const char *name = "kafka";
    static constexpr const char *version = "1.0.0";
    static constexpr const char *description =
        "Consumes Kafka topics in a consumer group (cooperative-sticky); commits per partition only offsets the "
        "pipeline delivered; on a rebalance gives partitions up once their records in flight are delivered.";
    static constexpr uint64_t capabilities = 0;
    static config::Spec config_spec();

    explicit KafkaExtractor(const Context &ctx);
    ~KafkaExtractor();
    // sluice.preflight/1: a broker answers and every topic exists.
    std::vector<std::string> preflight() const { return settings_.preflight(topics_, "topics"); }
    void start();
    bool pull(Emitter &out, uint32_t max_records);
    void stop();
    // sluice.checkpoint/1: the number of the pull; the group keeps the
    // offsets, so an old position is ignored on restore.
    std::string checkpoint() const { return std::to_string(pulls_made_); }
    void restore(std::string_view) {}
    // sluice.acknowledged/1: the offsets of every pull up to that number
    // are delivered and may be committed.
    void acknowledged(std::string_view position);
    const void *extension(const char *id) const;

private:
    using Partition = std::pair<std::string, int32_t>; // topic, partition
    using Offsets = std::map<Partition, int64_t>;      // the next offset to read

    static void on_commit(rd_kafka_t *rk, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t *offsets,
                          void *opaque);
    static int on_stats(rd_kafka_t *rk, char *json, size_t json_len, void *opaque);
    static void on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t *partitions,
                             void *opaque);
    void rebalance(rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t *partitions);
    // Commits the delivered offsets of the partitions this consumer holds
    // (of `only` when given); `sync` waits for the broker's answer. Offsets
    // whose commit fails are kept for the next commit.
    void commit(bool sync, const std::set<Partition> *only = nullptr);
    // Puts offsets whose commit failed back with the ones to commit.
    void keep_uncommitted(const rd_kafka_topic_partition_list_t *offsets);
    void keep(const Offsets &offsets);
    // Waits until no pull still in flight holds records of `partitions`.
    bool wait_delivered(const std::set<Partition> &partitions);

    Host host_;
    ClientSettings settings_;
    std::vector<std::string> topics_;
    std::string content_type_, group_;
    std::chrono::milliseconds poll_{500}, rebalance_wait_{10000}, commit_interval_{1000};
    std::chrono::steady_clock::time_point next_commit_{};
    // Set when a commit says the group is rebalancing, until the next
    // rebalance callback (or kCommitPause, for an answer that came after
    // it): librdkafka 2.0 declares the whole assignment lost when a commit
    // sent during a rejoin comes back with the old generation (librdkafka
    // issue 4059), so none is sent then.
    static constexpr std::chrono::seconds kCommitPause{5};
    // Whether librdkafka last said (its statistics, every 100 ms) that this
    // member is a steady part of the group, not rejoining: periodic commits
    // wait for that, for the same reason.
    bool group_steady_ = false;
    std::chrono::steady_clock::time_point commits_paused_until_{};
    Handle rk_;
    bool stopping_ = false;
    json::RecordParser parser_;
    std::vector<rd_kafka_message_t *> buffer_; // the pull being assembled (owned)
    // Touched on the pull thread only (rebalance and commit callbacks run there).
    std::set<Partition> assigned_;
    Offsets read_to_;      // next offset after the last record emitted
    Offsets lost_read_to_; // read_to_ of partitions lost without being given up

    // Shared with acknowledged() (any thread).
    std::mutex mutex_;
    std::condition_variable acked_;
    uint64_t pulls_made_ = 0;
    std::deque<std::pair<uint64_t, Offsets>> in_flight_;
    Offsets delivered_; // not yet committed
};

} // namespace sluice::plugins::kafka
