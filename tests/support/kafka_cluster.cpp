#include "kafka_cluster.hpp"

#include <librdkafka/rdkafka.h>

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <stdexcept>
#include <thread>

namespace sluice::test {

namespace {

rd_kafka_t *client(rd_kafka_type_t type, const std::string &bootstrap,
                   const std::vector<std::pair<std::string, std::string>> &properties = {}) {
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char error[512];
    rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap.c_str(), error, sizeof error);
    for (const auto &[k, v] : properties)
        if (rd_kafka_conf_set(conf, k.c_str(), v.c_str(), error, sizeof error) != RD_KAFKA_CONF_OK)
            throw std::runtime_error(k + ": " + error);
    rd_kafka_t *rk = rd_kafka_new(type, conf, error, sizeof error);
    if (!rk) throw std::runtime_error(error);
    return rk;
}

// rd_kafka_destroy leaves librdkafka's threads finishing in the background:
// wait for them, so that none is alive when the test process exits.
void destroy(rd_kafka_t *rk) {
    rd_kafka_destroy(rk);
    rd_kafka_wait_destroyed(10000);
}

} // namespace

bool KafkaCluster::available() { return ::access(SLUICE_KAFKA_MOCK_CLUSTER, X_OK) == 0; }

KafkaCluster::KafkaCluster(const std::vector<std::string> &topics, int brokers) {
    std::vector<std::string> argv{SLUICE_KAFKA_MOCK_CLUSTER, std::to_string(brokers)};
    for (const std::string &t : topics) {
        argv.push_back(t);
        size_t colon = t.find(':');
        partitions_[t.substr(0, colon)] = colon == std::string::npos ? 1 : std::stoi(t.substr(colon + 1));
    }
    process_ = std::make_unique<ChildProcess>(argv);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (std::chrono::steady_clock::now() < deadline) {
        std::string out = process_->out_so_far();
        if (size_t at = out.find("bootstrap "); at != std::string::npos && out.find('\n', at) != std::string::npos) {
            bootstrap_ = out.substr(at + 10, out.find('\n', at) - at - 10);
            return;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    throw std::runtime_error("the mock cluster did not start: " + process_->err_so_far());
}

KafkaCluster::~KafkaCluster() {
    if (process_) {
        process_->signal(SIGTERM);
        process_->wait(std::chrono::seconds(10));
    }
}

int KafkaCluster::partitions(const std::string &topic) const {
    auto it = partitions_.find(topic);
    return it == partitions_.end() ? 0 : it->second;
}

void KafkaCluster::produce(const std::string &topic, const std::vector<std::string> &values,
                           const std::vector<std::string> &keys,
                           const std::vector<std::pair<std::string, std::string>> &headers) {
    rd_kafka_t *rk = client(RD_KAFKA_PRODUCER, bootstrap_, {{"linger.ms", "5"}, {"acks", "all"}});
    for (size_t i = 0; i < values.size(); ++i) {
        rd_kafka_headers_t *h = nullptr;
        if (!headers.empty()) {
            h = rd_kafka_headers_new(headers.size());
            for (const auto &[k, v] : headers) rd_kafka_header_add(h, k.c_str(), -1, v.data(), ssize_t(v.size()));
        }
        const std::string *key = keys.empty() ? nullptr : &keys[i];
        // Without a key, spread the messages over every partition (the
        // default partitioner would stick to one for a while).
        const int32_t partition = key ? RD_KAFKA_PARTITION_UA : int32_t(i % size_t(std::max(1, partitions(topic))));
        for (;;) {
            rd_kafka_resp_err_t err = rd_kafka_producev(
                rk, RD_KAFKA_V_TOPIC(topic.c_str()),
                RD_KAFKA_V_VALUE(const_cast<char *>(values[i].data()), values[i].size()),
                RD_KAFKA_V_KEY(key ? key->data() : nullptr, key ? key->size() : 0), RD_KAFKA_V_PARTITION(partition),
                RD_KAFKA_V_HEADERS(h),
                RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
            if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
                rd_kafka_poll(rk, 50);
                continue;
            }
            if (err) throw std::runtime_error(std::string("produce: ") + rd_kafka_err2str(err));
            break;
        }
    }
    rd_kafka_resp_err_t err = rd_kafka_flush(rk, 60000);
    destroy(rk);
    if (err) throw std::runtime_error(std::string("flush: ") + rd_kafka_err2str(err));
}

std::vector<KafkaMessage> KafkaCluster::read_all(const std::string &topic) {
    rd_kafka_t *rk = client(RD_KAFKA_CONSUMER, bootstrap_,
                            {{"group.id", "sluice-test-reader"}, {"enable.partition.eof", "true"},
                             {"enable.auto.commit", "false"}});
    rd_kafka_poll_set_consumer(rk);
    const int n = partitions(topic);
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(n);
    for (int p = 0; p < n; ++p) rd_kafka_topic_partition_list_add(list, topic.c_str(), p)->offset = RD_KAFKA_OFFSET_BEGINNING;
    rd_kafka_assign(rk, list);
    rd_kafka_topic_partition_list_destroy(list);
    std::vector<KafkaMessage> messages;
    int at_end = 0;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (at_end < n && std::chrono::steady_clock::now() < deadline) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 200);
        if (!m) continue;
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            ++at_end;
        } else if (!m->err) {
            KafkaMessage k;
            k.partition = m->partition;
            k.offset = m->offset;
            if (m->key) k.key.assign(static_cast<const char *>(m->key), m->key_len);
            if (m->payload) k.value.assign(static_cast<const char *>(m->payload), m->len);
            rd_kafka_headers_t *h = nullptr;
            if (rd_kafka_message_headers(m, &h) == RD_KAFKA_RESP_ERR_NO_ERROR) {
                const char *name;
                const void *value;
                size_t size;
                for (size_t i = 0; rd_kafka_header_get_all(h, i, &name, &value, &size) == RD_KAFKA_RESP_ERR_NO_ERROR; ++i)
                    k.headers.emplace_back(name, std::string(static_cast<const char *>(value), size));
            }
            messages.push_back(std::move(k));
        }
        rd_kafka_message_destroy(m);
    }
    rd_kafka_consumer_close(rk);
    destroy(rk);
    return messages;
}

std::map<int32_t, int64_t> KafkaCluster::committed(const std::string &topic, const std::string &group) {
    rd_kafka_t *rk = client(RD_KAFKA_CONSUMER, bootstrap_, {{"group.id", group}, {"enable.auto.commit", "false"}});
    const int n = partitions(topic);
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(n);
    for (int p = 0; p < n; ++p) rd_kafka_topic_partition_list_add(list, topic.c_str(), p);
    std::map<int32_t, int64_t> offsets;
    if (rd_kafka_committed(rk, list, 10000) == RD_KAFKA_RESP_ERR_NO_ERROR)
        for (int i = 0; i < list->cnt; ++i)
            if (list->elems[i].offset >= 0) offsets[list->elems[i].partition] = list->elems[i].offset;
    rd_kafka_topic_partition_list_destroy(list);
    destroy(rk);
    return offsets;
}

} // namespace sluice::test
