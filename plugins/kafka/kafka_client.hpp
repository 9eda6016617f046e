// What the Kafka extractor and loader share: the broker list, extra
// librdkafka properties, and building a librdkafka configuration from them
// with one-line errors that name the property.
#pragma once

#include <sluice/config_spec.hpp>
#include <sluice/json.hpp>
#include <sluice/plugin.hpp>

#include <librdkafka/rdkafka.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace sluice::plugins::kafka {

// Destroys a client; when it was the process's last, also waits for
// librdkafka's threads to end (rd_kafka_destroy leaves them finishing in the
// background, and a process must not exit, or unload this library, under
// them).
struct HandleDestroy {
    void operator()(rd_kafka_t *rk) const;
};
using Handle = std::unique_ptr<rd_kafka_t, HandleDestroy>;

// rd_kafka_new, counted for HandleDestroy. It takes `conf` in every case;
// when librdkafka refuses, the handle is null and `error` says why.
Handle new_client(rd_kafka_type_t type, rd_kafka_conf_t *conf, std::string &error);

// "brokers" and "properties", declared once for both stages.
config::Spec client_spec();

using Properties = std::vector<std::pair<std::string, std::string>>;

struct ClientSettings {
    std::string brokers;
    Properties properties; // from the manifest, then the stage's own

    // `fixed`: properties the stage sets itself (its guarantees depend on
    // them); the manifest may not set them.
    static ClientSettings read(const json::Config &c, const Properties &fixed);
    // A librdkafka configuration with every property set; throws Error
    // ("properties.NAME: what librdkafka said") on one it refuses.
    rd_kafka_conf_t *make_conf() const;
    // sluice.preflight/1: a broker answers and each of `topics` exists
    // (problems as "field: what").
    std::vector<std::string> preflight(const std::vector<std::string> &topics, const std::string &topics_field) const;
};

// Whether a delivery or consume error is about one message (too large, a
// record the broker refuses) rather than the cluster or the connection.
bool is_message_error(rd_kafka_resp_err_t err);

} // namespace sluice::plugins::kafka
