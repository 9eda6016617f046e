#include "kafka_extractor.hpp"

#include <algorithm>
#include <charconv>
#include <cstring>
#include <thread>

namespace sluice::plugins::kafka {

config::Spec KafkaExtractor::config_spec() {
    using config::Field;
    return config::Spec{
        Field::strings("topics", "Topics to consume").required(),
        Field::string("group", "The consumer group (group.id); every worker of one pipeline uses the same")
            .required()
            .not_empty(),
        Field::choice("start", {"earliest", "latest"},
                      "Where a group with no committed offset for a partition starts (auto.offset.reset)")
            .default_to("earliest"),
        Field::string("content_type", "Content type of the records; application/json values are checked and a "
                                      "message that is not JSON goes to the error path")
            .not_empty()
            .default_to(SLUICE_CONTENT_JSON),
        Field::integer("poll_ms", "How long one pull waits for the first message (also how soon a stop is noticed)")
            .minimum(1)
            .maximum(60000)
            .default_to(500),
        Field::integer("commit_interval_ms", "How often the offsets of delivered records are committed (also when "
                                             "partitions are given up and at a stop)")
            .minimum(1)
            .default_to(1000),
        Field::integer("rebalance_wait_ms",
                       "On a rebalance, how long to wait for the records in flight of the partitions being taken "
                       "away to be delivered before their offsets are committed; past it they are handed over "
                       "uncommitted (their next owner reads them again)")
            .minimum(0)
            .default_to(10000),
    }
        .include(client_spec());
}

KafkaExtractor::KafkaExtractor(const Context &ctx) : host_(ctx.host) {
    json::Config c(ctx.config_json);
    topics_ = c.strings("topics");
    if (topics_.empty()) c.fail("topics", "name at least one topic");
    group_ = c.required_string("group");
    content_type_ = c.string("content_type", SLUICE_CONTENT_JSON);
    poll_ = std::chrono::milliseconds(c.integer("poll_ms", 500));
    rebalance_wait_ = std::chrono::milliseconds(c.integer("rebalance_wait_ms", 10000));
    commit_interval_ = std::chrono::milliseconds(c.integer("commit_interval_ms", 1000));
    settings_ = ClientSettings::read(c, {{"group.id", group_},
                                         {"enable.auto.commit", "false"},
                                         {"enable.auto.offset.store", "false"},
                                         {"partition.assignment.strategy", "cooperative-sticky"},
                                         {"auto.offset.reset", c.string("start", "earliest")},
                                         {"statistics.interval.ms", "100"}});
}

KafkaExtractor::~KafkaExtractor() {
    for (rd_kafka_message_t *m : buffer_) rd_kafka_message_destroy(m);
}

void KafkaExtractor::start() {
    rd_kafka_conf_t *conf = settings_.make_conf();
    rd_kafka_conf_set_opaque(conf, this);
    rd_kafka_conf_set_rebalance_cb(conf, &KafkaExtractor::on_rebalance);
    rd_kafka_conf_set_offset_commit_cb(conf, &KafkaExtractor::on_commit);
    rd_kafka_conf_set_stats_cb(conf, &KafkaExtractor::on_stats);
    std::string error;
    rk_ = new_client(RD_KAFKA_CONSUMER, conf, error);
    if (!rk_) throw Error("cannot create the consumer: " + error);
    rd_kafka_t *rk = rk_.get();
    rd_kafka_poll_set_consumer(rk);
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(int(topics_.size()));
    for (const std::string &t : topics_) rd_kafka_topic_partition_list_add(list, t.c_str(), RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t err = rd_kafka_subscribe(rk, list);
    rd_kafka_topic_partition_list_destroy(list);
    if (err) throw Error(std::string("cannot subscribe: ") + rd_kafka_err2str(err));
    host_.info("consuming " + settings_.brokers + " in group " + group_);
}

int KafkaExtractor::on_stats(rd_kafka_t *, char *json, size_t json_len, void *opaque) {
    // Served by consumer_poll on the pull thread. Only the group's join
    // state is read: "steady" once a rebalance is done.
    std::string_view stats(json, json_len);
    constexpr std::string_view key = "\"join_state\"";
    if (size_t at = stats.find(key); at != std::string_view::npos) {
        size_t open = stats.find('"', stats.find(':', at + key.size()));
        if (open == std::string_view::npos) return 0;
        std::string_view state = stats.substr(open + 1);
        static_cast<KafkaExtractor *>(opaque)->group_steady_ = state.substr(0, state.find('"')) == "steady";
    }
    return 0; // librdkafka frees the text
}

void KafkaExtractor::on_rebalance(rd_kafka_t *, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t *partitions,
                                  void *opaque) {
    static_cast<KafkaExtractor *>(opaque)->rebalance(err, partitions);
}

void KafkaExtractor::rebalance(rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t *partitions) {
    rd_kafka_t *rk = rk_.get();
    commits_paused_until_ = {}; // a round of the rebalance is done
    const bool cooperative = std::strcmp(rd_kafka_rebalance_protocol(rk) ? rd_kafka_rebalance_protocol(rk) : "",
                                         "COOPERATIVE") == 0;
    std::set<Partition> changed;
    for (int i = 0; i < partitions->cnt; ++i)
        changed.emplace(partitions->elems[i].topic, partitions->elems[i].partition);
    std::string names;
    for (const auto &[t, p] : changed) names += (names.empty() ? "" : ", ") + t + "/" + std::to_string(p);
    rd_kafka_error_t *error = nullptr;
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        // A partition this consumer lost (without giving it up) and gets
        // back resumes where its own reading stopped: everything before is
        // in its pipeline or delivered, and is committed once delivered.
        std::string resumed;
        for (int i = 0; i < partitions->cnt; ++i) {
            rd_kafka_topic_partition_t &p = partitions->elems[i];
            auto it = lost_read_to_.find({p.topic, p.partition});
            if (it == lost_read_to_.end()) continue;
            p.offset = it->second;
            resumed += (resumed.empty() ? "" : ", ") + std::string(p.topic) + "/" + std::to_string(p.partition) +
                       "@" + std::to_string(it->second);
            lost_read_to_.erase(it);
        }
        // Lost partitions that did not come back in this assignment are
        // someone else's: forget what this consumer read and delivered of
        // them, so that a much later return starts from the group's commit.
        if (!lost_read_to_.empty()) {
            std::lock_guard lock(mutex_);
            for (const auto &[p, read] : lost_read_to_) {
                delivered_.erase(p);
                read_to_.erase(p);
                for (auto &pull : in_flight_) pull.second.erase(p);
            }
            lost_read_to_.clear();
        }
        host_.info("assigned " + names + (resumed.empty() ? "" : "; resuming lost " + resumed + " where it was read to"));
        assigned_.insert(changed.begin(), changed.end());
        if (cooperative) error = rd_kafka_incremental_assign(rk, partitions);
        else rd_kafka_assign(rk, partitions);
    } else {
        const bool lost = err != RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS || rd_kafka_assignment_lost(rk);
        // 1. Stop pulling from them: what this pull took from them is
        //    dropped (their next owner reads it from the committed offset).
        buffer_.erase(std::remove_if(buffer_.begin(), buffer_.end(),
                                     [&](rd_kafka_message_t *m) {
                                         if (!changed.count({rd_kafka_topic_name(m->rkt), m->partition})) return false;
                                         rd_kafka_message_destroy(m);
                                         return true;
                                     }),
                      buffer_.end());
        // 2. Wait for their records in flight, 3. commit what was
        //    delivered, 4. give them up. Lost partitions already belong to
        //    someone else: nothing may be committed for them.
        if (!lost) {
            if (!stopping_ && !wait_delivered(changed))
                host_.warn("rebalance: records of " + names + " still in flight after " +
                           std::to_string(rebalance_wait_.count()) +
                           " ms; handing them over uncommitted (their next owner reads them again)");
            commit(true, &changed);
            host_.info("revoked " + names);
            // Records of theirs delivered from now on are the next owner's
            // business: their offsets are no longer this consumer's to commit.
            std::lock_guard lock(mutex_);
            for (const Partition &p : changed) {
                delivered_.erase(p);
                read_to_.erase(p);
                for (auto &pull : in_flight_) pull.second.erase(p);
            }
        } else {
            // Nothing may be committed for them now. Their records in flight
            // stay tracked: if they come back to this consumer (sticky
            // assignment), reading resumes after them and they are
            // committed once delivered.
            host_.warn("lost " + names + " (the group moved on without this consumer); nothing committed for them");
            for (const Partition &p : changed)
                if (auto it = read_to_.find(p); it != read_to_.end()) lost_read_to_[p] = it->second;
        }
        for (const Partition &p : changed) assigned_.erase(p);
        if (cooperative) error = rd_kafka_incremental_unassign(rk, partitions);
        else rd_kafka_assign(rk, nullptr);
    }
    if (error) {
        host_.warn(std::string("rebalance: ") + rd_kafka_error_string(error));
        rd_kafka_error_destroy(error);
    }
}

bool KafkaExtractor::wait_delivered(const std::set<Partition> &partitions) {
    std::unique_lock lock(mutex_);
    return acked_.wait_for(lock, rebalance_wait_, [&] {
        for (const auto &[n, offsets] : in_flight_)
            for (const auto &[p, next] : offsets)
                if (partitions.count(p)) return false;
        return true;
    });
}

void KafkaExtractor::acknowledged(std::string_view position) {
    uint64_t n = 0;
    auto [end, ec] = std::from_chars(position.data(), position.data() + position.size(), n);
    if (ec != std::errc() || end != position.data() + position.size()) return;
    {
        std::lock_guard lock(mutex_);
        while (!in_flight_.empty() && in_flight_.front().first <= n) {
            for (const auto &[p, next] : in_flight_.front().second) {
                int64_t &d = delivered_[p];
                d = std::max(d, next);
            }
            in_flight_.pop_front();
        }
    }
    acked_.notify_all();
}

namespace {

// Errors after which the same commit may succeed a little later.
bool retriable(rd_kafka_resp_err_t err) {
    switch (err) {
    case RD_KAFKA_RESP_ERR_REBALANCE_IN_PROGRESS:
    case RD_KAFKA_RESP_ERR_COORDINATOR_LOAD_IN_PROGRESS:
    case RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE:
    case RD_KAFKA_RESP_ERR_NOT_COORDINATOR:
    case RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT:
    case RD_KAFKA_RESP_ERR__TIMED_OUT:
    case RD_KAFKA_RESP_ERR__TRANSPORT:
        return true;
    default:
        return false;
    }
}

} // namespace

void KafkaExtractor::on_commit(rd_kafka_t *, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t *offsets,
                               void *opaque) {
    auto *self = static_cast<KafkaExtractor *>(opaque);
    bool rebalancing = err == RD_KAFKA_RESP_ERR_REBALANCE_IN_PROGRESS;
    for (int i = 0; offsets && i < offsets->cnt; ++i)
        rebalancing = rebalancing || offsets->elems[i].err == RD_KAFKA_RESP_ERR_REBALANCE_IN_PROGRESS;
    if (rebalancing) self->commits_paused_until_ = std::chrono::steady_clock::now() + kCommitPause;
    if (err == RD_KAFKA_RESP_ERR__NO_OFFSET || !offsets) return;
    self->keep_uncommitted(offsets);
}

void KafkaExtractor::keep_uncommitted(const rd_kafka_topic_partition_list_t *offsets) {
    // Called on the pull thread (from consumer_poll): assigned_ is ours.
    std::lock_guard lock(mutex_);
    for (int i = 0; i < offsets->cnt; ++i) {
        const rd_kafka_topic_partition_t &p = offsets->elems[i];
        if (!p.err || p.offset < 0) continue;
        Partition key{p.topic, p.partition};
        if (!assigned_.count(key)) continue; // someone else's now
        int64_t &d = delivered_[key];
        d = std::max(d, p.offset);
    }
}

void KafkaExtractor::keep(const Offsets &offsets) {
    std::lock_guard lock(mutex_);
    for (const auto &[p, next] : offsets) {
        int64_t &d = delivered_[p];
        d = std::max(d, next);
    }
}

void KafkaExtractor::commit(bool sync, const std::set<Partition> *only) {
    Offsets offsets;
    {
        std::lock_guard lock(mutex_);
        for (auto it = delivered_.begin(); it != delivered_.end();) {
            if (assigned_.count(it->first) && (!only || only->count(it->first))) {
                offsets.insert(*it);
                it = delivered_.erase(it);
            } else {
                ++it;
            }
        }
    }
    if (offsets.empty()) return;
    if (!sync && (!group_steady_ || std::chrono::steady_clock::now() < commits_paused_until_)) {
        keep(offsets);
        return;
    }
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(int(offsets.size()));
    for (const auto &[p, next] : offsets)
        rd_kafka_topic_partition_list_add(list, p.first.c_str(), p.second)->offset = next;
    // Asynchronous: the outcome comes to on_commit, which keeps what failed
    // for the next commit. Synchronous (before partitions are given up):
    // tried again while the group is busy, up to rebalance_wait_ms.
    const auto deadline = std::chrono::steady_clock::now() + rebalance_wait_;
    rd_kafka_resp_err_t err;
    for (;;) {
        err = rd_kafka_commit(rk_.get(), list, sync ? 0 : 1);
        if (!sync || !retriable(err) || std::chrono::steady_clock::now() >= deadline) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    rd_kafka_topic_partition_list_destroy(list);
    if (err && err != RD_KAFKA_RESP_ERR__NO_OFFSET) {
        // Not a loss: the next owner of these partitions reads from the
        // last committed offset again (at least once).
        host_.warn(std::string("commit failed: ") + rd_kafka_err2str(err));
        host_.counter("commit_failures", 1);
        return;
    }
    host_.counter("commits", 1);
}

bool KafkaExtractor::pull(Emitter &out, uint32_t max_records) {
    if (std::chrono::steady_clock::now() >= next_commit_) {
        commit(false);
        next_commit_ = std::chrono::steady_clock::now() + commit_interval_;
    }
    const auto deadline = std::chrono::steady_clock::now() + poll_;
    while (buffer_.size() < max_records) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
        // Wait for the first message; after it take only what is there.
        int timeout = buffer_.empty() ? int(std::max<int64_t>(left.count(), 0)) : 0;
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk_.get(), timeout);
        if (!m) {
            if (!buffer_.empty() || left.count() <= 0 || host_.stop_requested()) break;
            continue;
        }
        if (m->err) {
            std::string what = rd_kafka_message_errstr(m);
            rd_kafka_resp_err_t err = m->err;
            rd_kafka_message_destroy(m);
            if (err == RD_KAFKA_RESP_ERR__PARTITION_EOF) continue;
            if (rd_kafka_fatal_error(rk_.get(), nullptr, 0)) throw FatalError("consumer: " + what);
            // Brokers down, a topic that does not exist yet: librdkafka
            // keeps trying; say so and carry on.
            host_.warn("consumer: " + what);
            host_.counter("consume_errors", 1);
            break;
        }
        buffer_.push_back(m);
    }
    if (buffer_.empty()) return false;
    Offsets offsets;
    std::string source, partition, offset, timestamp;
    for (rd_kafka_message_t *m : buffer_) {
        const char *topic = rd_kafka_topic_name(m->rkt);
        source = "kafka://" + std::string(topic) + "/" + std::to_string(m->partition);
        partition = std::to_string(m->partition);
        offset = std::to_string(m->offset);
        int64_t &next = offsets[{topic, m->partition}];
        next = std::max<int64_t>(next, m->offset + 1);
        int64_t &read = read_to_[{topic, m->partition}];
        read = std::max<int64_t>(read, m->offset + 1);
        std::vector<sluice_attr> attrs{attr(SLUICE_ATTR_SOURCE, source), attr("kafka_topic", topic),
                                       attr("kafka_partition", partition), attr("kafka_offset", offset)};
        if (m->key) attrs.push_back(attr("kafka_key", {static_cast<const char *>(m->key), m->key_len}));
        rd_kafka_timestamp_type_t type;
        if (int64_t ts = rd_kafka_message_timestamp(m, &type); ts >= 0) {
            timestamp = std::to_string(ts);
            attrs.push_back(attr("kafka_timestamp_ms", timestamp));
        }
        rd_kafka_headers_t *headers = nullptr;
        if (rd_kafka_message_headers(m, &headers) == RD_KAFKA_RESP_ERR_NO_ERROR) {
            const char *name;
            const void *value;
            size_t size;
            for (size_t i = 0; rd_kafka_header_get_all(headers, i, &name, &value, &size) == RD_KAFKA_RESP_ERR_NO_ERROR;
                 ++i)
                attrs.push_back(attr(name, value ? std::string_view(static_cast<const char *>(value), size) : ""));
        }
        std::string_view payload(static_cast<const char *>(m->payload), m->payload ? m->len : 0);
        const std::string where = std::string(topic) + "/" + partition + "@" + offset;
        if (!m->payload) {
            out.emit_failed("", "message " + where + " has no value (a tombstone)", {attrs[0], attrs[3]});
            continue;
        }
        if (content_type_ == SLUICE_CONTENT_JSON) {
            std::string error;
            if (!parser_.parse(payload, error)) {
                out.emit_failed(payload, "message " + where + ": invalid JSON (" + error + ")", {attrs[0], attrs[3]});
                continue;
            }
        }
        out.emit(0, SLUICE_NO_INPUT, payload, content_type_.c_str(), attrs.data(), uint32_t(attrs.size()));
    }
    for (rd_kafka_message_t *m : buffer_) rd_kafka_message_destroy(m);
    buffer_.clear();
    std::lock_guard lock(mutex_);
    in_flight_.emplace_back(++pulls_made_, std::move(offsets));
    return false; // a topic has no end
}

void KafkaExtractor::stop() {
    if (!rk_) return;
    // Leaving the group revokes every partition: the rebalance callback
    // commits what was delivered, without waiting (the run is over).
    stopping_ = true;
    commit(true);
    rd_kafka_consumer_close(rk_.get());
    size_t pending = 0;
    {
        std::lock_guard lock(mutex_);
        pending = in_flight_.size();
    }
    if (pending) host_.info(std::to_string(pending) + " pulls not delivered: their offsets were not committed");
    rk_.reset();
}

const void *KafkaExtractor::extension(const char *id) const {
    static const sluice_metric metrics[] = {
        {"commits", SLUICE_METRIC_COUNTER, 0, "commits", "offset commits of delivered records"},
        {"commit_failures", SLUICE_METRIC_COUNTER, 0, "commits",
         "synchronous commits (before giving partitions up) that failed: their records are read again"},
        {"consume_errors", SLUICE_METRIC_COUNTER, 0, "errors", "errors the consumer reported (brokers, topics)"},
    };
    static const sluice_metrics_ext ext = {sizeof(sluice_metrics_ext), 3, metrics, 0, 0, nullptr,
                                           "{commits} commits, {commit_failures} failed, {consume_errors} consumer "
                                           "errors"};
    return id && std::strcmp(id, SLUICE_EXT_METRICS) == 0 ? &ext : nullptr;
}

} // namespace sluice::plugins::kafka
