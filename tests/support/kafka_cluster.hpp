// librdkafka's mock cluster for one test (tests/kafka_mock), started as a
// child process, plus what a test needs around it: producing messages,
// reading a topic back, and a group's committed offsets.
#pragma once

#include "child_process.hpp"

#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace sluice::test {

struct KafkaMessage {
    int32_t partition = 0;
    int64_t offset = 0;
    std::string key, value;
    std::vector<std::pair<std::string, std::string>> headers;
};

class KafkaCluster {
public:
    // `topics`: "name:partitions" each. Throws std::runtime_error.
    explicit KafkaCluster(const std::vector<std::string> &topics, int brokers = 3);
    ~KafkaCluster();

    const std::string &bootstrap() const { return bootstrap_; }
    // Produces `values` (with `keys` when given, one per value) and waits
    // for every delivery report.
    void produce(const std::string &topic, const std::vector<std::string> &values,
                 const std::vector<std::string> &keys = {},
                 const std::vector<std::pair<std::string, std::string>> &headers = {});
    // Every message of `topic`, read from the start of each partition.
    std::vector<KafkaMessage> read_all(const std::string &topic);
    // The committed offset of each partition of `topic` for `group`
    // (missing: none committed).
    std::map<int32_t, int64_t> committed(const std::string &topic, const std::string &group);
    int partitions(const std::string &topic) const;

    static bool available();

private:
    std::unique_ptr<ChildProcess> process_;
    std::string bootstrap_;
    std::map<std::string, int> partitions_;
};

} // namespace sluice::test
