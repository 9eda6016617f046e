#include "kafka_client.hpp"

#include <atomic>

namespace sluice::plugins::kafka {

namespace {

std::atomic<int> live_clients{0};

} // namespace

void HandleDestroy::operator()(rd_kafka_t *rk) const {
    if (!rk) return;
    rd_kafka_destroy(rk);
    if (--live_clients == 0) rd_kafka_wait_destroyed(10000);
}

Handle new_client(rd_kafka_type_t type, rd_kafka_conf_t *conf, std::string &error) {
    char message[512];
    rd_kafka_t *rk = rd_kafka_new(type, conf, message, sizeof message);
    if (!rk) {
        rd_kafka_conf_destroy(conf);
        error = message;
        return Handle();
    }
    ++live_clients;
    return Handle(rk);
}

config::Spec client_spec() {
    using config::Field;
    return config::Spec{
        Field::string("brokers", "Bootstrap servers, HOST:PORT[,HOST:PORT...]").required().not_empty(),
        Field::map("properties", R"({"type": "string"})",
                   "More librdkafka properties, {\"security.protocol\": \"sasl_ssl\", \"sasl.password\": "
                   "\"${file:/run/secrets/kafka}\"}; the ones the stage's guarantees rest on are refused")
            .default_to(boost::json::object{}),
    };
}

ClientSettings ClientSettings::read(const json::Config &c, const Properties &fixed) {
    ClientSettings s;
    s.brokers = c.required_string("brokers");
    s.properties.emplace_back("bootstrap.servers", s.brokers);
    if (const boost::json::value *p = c.find("properties"); p && p->is_object()) {
        for (const auto &kv : p->as_object()) {
            std::string key(kv.key());
            for (const auto &[name, value] : fixed)
                if (key == name)
                    c.fail("properties." + key, "set by the stage to " + value + " (its delivery guarantee rests on it)");
            if (key == "bootstrap.servers") c.fail("properties." + key, "use brokers");
            if (!kv.value().is_string()) c.fail("properties." + key, "expected a string");
            s.properties.emplace_back(key, std::string(kv.value().as_string()));
        }
    }
    for (const auto &kv : fixed) s.properties.push_back(kv);
    // Checked now, so that `sluice validate` finds a misspelt property.
    rd_kafka_conf_destroy(s.make_conf());
    return s;
}

rd_kafka_conf_t *ClientSettings::make_conf() const {
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char error[512];
    for (const auto &[name, value] : properties) {
        if (rd_kafka_conf_set(conf, name.c_str(), value.c_str(), error, sizeof error) != RD_KAFKA_CONF_OK) {
            rd_kafka_conf_destroy(conf);
            throw Error("properties." + name + ": " + error);
        }
    }
    return conf;
}

std::vector<std::string> ClientSettings::preflight(const std::vector<std::string> &topics,
                                                   const std::string &topics_field) const {
    // A producer handle of the same settings (TLS, SASL) that only asks for
    // metadata: it joins no group and writes nothing.
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char error[512];
    for (const auto &[name, value] : properties) {
        if (name == "group.id" || name.rfind("enable.auto", 0) == 0 || name == "partition.assignment.strategy" ||
            name == "auto.offset.reset")
            continue; // consumer-only properties
        rd_kafka_conf_set(conf, name.c_str(), value.c_str(), error, sizeof error);
    }
    std::string refused;
    Handle rk = new_client(RD_KAFKA_PRODUCER, conf, refused);
    if (!rk) return {"properties: " + refused};
    const rd_kafka_metadata_t *metadata = nullptr;
    rd_kafka_resp_err_t err = rd_kafka_metadata(rk.get(), 1, nullptr, &metadata, 5000);
    if (err) return {"brokers: no answer from " + brokers + " within 5 s (" + rd_kafka_err2str(err) + ")"};
    std::vector<std::string> problems;
    for (const std::string &t : topics) {
        bool found = false;
        for (int i = 0; i < metadata->topic_cnt; ++i)
            if (t == metadata->topics[i].topic && !metadata->topics[i].err) found = true;
        if (!found) problems.push_back(topics_field + ": topic " + t + " does not exist on " + brokers);
    }
    rd_kafka_metadata_destroy(metadata);
    return problems;
}

bool is_message_error(rd_kafka_resp_err_t err) {
    switch (err) {
    case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
    case RD_KAFKA_RESP_ERR_INVALID_RECORD:
    case RD_KAFKA_RESP_ERR_INVALID_MSG:
    case RD_KAFKA_RESP_ERR__INVALID_ARG:
        return true;
    default:
        return false;
    }
}

} // namespace sluice::plugins::kafka
