// Loader "kafka": an idempotent producer (acks=all); a batch is delivered
// once every message's delivery report says the brokers have it. Key and
// headers come from record fields and attributes. See README.md.
#pragma once

#include "kafka_client.hpp"

#include <sluice/config_spec.hpp>
#include <sluice/json.hpp>
#include <sluice/plugin.hpp>

#include <chrono>
#include <string>
#include <vector>

namespace sluice::plugins::kafka {

class KafkaLoader {
public:
    static constexpr sluice_kind kind = SLUICE_KIND_LOADER;
    static constexpr const char *name = "kafka";
    static constexpr const char *version = "1.0.0";
    static constexpr const char *description =
        "Produces records to a Kafka topic as an idempotent producer (acks=all); delivered once the delivery "
        "reports say so; key from a field or attribute, headers from attributes.";
    static constexpr uint64_t capabilities = 0;
    static config::Spec config_spec();

    explicit KafkaLoader(const Context &ctx);
    // sluice.preflight/1: a broker answers and the topic exists.
    std::vector<std::string> preflight() const { return settings_.preflight({topic_}, "topic"); }
    void start();
    void process(Input in, Emitter &out);
    void stop();
    // sluice.delivery/1: every message of a batch has its delivery report
    // when process returns.
    bool durable_on_process() const { return true; }
    const void *extension(const char *id) const;

private:
    static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque);

    Host host_;
    ClientSettings settings_;
    std::string topic_, key_field_, key_attribute_;
    std::vector<std::string> header_attributes_;
    std::chrono::milliseconds delivery_timeout_{30000};
    Handle rk_;
    json::RecordParser parser_;
    // Delivery reports of the batch being sent, by input index.
    std::vector<rd_kafka_resp_err_t> results_;
    size_t outstanding_ = 0;
};

} // namespace sluice::plugins::kafka
