#include "kafka_loader.hpp"

#include <cstring>
#include <thread>

namespace sluice::plugins::kafka {

config::Spec KafkaLoader::config_spec() {
    using config::Field;
    return config::Spec{
        Field::string("topic", "The topic to produce to").required().not_empty(),
        Field::string("key_field", "Top-level field of a JSON record whose value is the message key (strings as "
                                   "they are, other values as JSON text); records without it get no key")
            .default_to(""),
        Field::string("key_attribute", "Or: the attribute whose value is the key (e.g. kafka_key from a Kafka "
                                       "source)")
            .default_to(""),
        Field::strings("header_attributes", "Attributes sent as message headers; [\"*\"]: all of them")
            .default_to(boost::json::array{}),
        Field::integer("delivery_timeout_ms", "How long a message may take to be acknowledged by the brokers, "
                                              "retries included (message.timeout.ms); past it the batch is an "
                                              "environment error and is sent again")
            .minimum(1)
            .default_to(30000),
    }
        .include(client_spec());
}

KafkaLoader::KafkaLoader(const Context &ctx) : host_(ctx.host) {
    json::Config c(ctx.config_json);
    topic_ = c.required_string("topic");
    key_field_ = c.string("key_field");
    key_attribute_ = c.string("key_attribute");
    if (!key_field_.empty() && !key_attribute_.empty()) c.fail("key_attribute", "use key_field or key_attribute, not both");
    header_attributes_ = c.strings("header_attributes");
    delivery_timeout_ = std::chrono::milliseconds(c.integer("delivery_timeout_ms", 30000));
    settings_ = ClientSettings::read(c, {{"enable.idempotence", "true"},
                                         {"acks", "all"},
                                         {"message.timeout.ms", std::to_string(delivery_timeout_.count())}});
}

void KafkaLoader::on_delivery(rd_kafka_t *, const rd_kafka_message_t *m, void *opaque) {
    auto *self = static_cast<KafkaLoader *>(opaque);
    size_t index = reinterpret_cast<uintptr_t>(m->_private);
    if (index < self->results_.size()) self->results_[index] = m->err;
    --self->outstanding_;
}

void KafkaLoader::start() {
    rd_kafka_conf_t *conf = settings_.make_conf();
    rd_kafka_conf_set_opaque(conf, this);
    rd_kafka_conf_set_dr_msg_cb(conf, &KafkaLoader::on_delivery);
    std::string error;
    rk_ = new_client(RD_KAFKA_PRODUCER, conf, error);
    if (!rk_) throw Error("cannot create the producer: " + error);
}

void KafkaLoader::process(Input in, Emitter &out) {
    if (!rk_) start(); // a fatal producer error left none
    results_.assign(in.size(), RD_KAFKA_RESP_ERR__IN_PROGRESS);
    std::vector<char> failed(in.size(), 0); // failed before being produced
    outstanding_ = 0;
    std::string key_text;
    for (uint32_t i = 0; i < in.size(); ++i) {
        Record r = in[i];
        std::string_view key;
        bool has_key = false;
        if (!key_field_.empty() && r.is_json()) {
            std::string error;
            const boost::json::object *o = parser_.parse_object(r.payload(), error);
            if (!o) {
                out.fail(i, "key_field " + key_field_ + ": " + error);
                failed[i] = 1;
                continue;
            }
            if (const boost::json::value *v = o->if_contains(key_field_); v && !v->is_null()) {
                key_text = v->is_string() ? std::string(v->get_string()) : boost::json::serialize(*v);
                key = key_text;
                has_key = true;
            }
        } else if (!key_attribute_.empty()) {
            if (auto a = r.attr(key_attribute_)) {
                key = *a;
                has_key = true;
            }
        }
        rd_kafka_headers_t *headers = nullptr;
        if (!header_attributes_.empty()) {
            const bool all = header_attributes_.size() == 1 && header_attributes_[0] == "*";
            headers = rd_kafka_headers_new(r.raw().attr_count);
            for (uint32_t a = 0; a < r.raw().attr_count; ++a) {
                const sluice_attr &at = r.raw().attrs[a];
                std::string_view k(at.key, at.key_len);
                if (all || std::find(header_attributes_.begin(), header_attributes_.end(), k) != header_attributes_.end())
                    rd_kafka_header_add(headers, at.key, ssize_t(at.key_len), at.value, ssize_t(at.value_len));
            }
        }
        rd_kafka_resp_err_t err;
        for (;;) {
            err = rd_kafka_producev(
                rk_.get(), RD_KAFKA_V_TOPIC(topic_.c_str()),
                RD_KAFKA_V_VALUE(const_cast<char *>(r.payload().data()), r.payload().size()),
                RD_KAFKA_V_KEY(has_key ? key.data() : nullptr, has_key ? key.size() : 0),
                RD_KAFKA_V_HEADERS(headers), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                RD_KAFKA_V_OPAQUE(reinterpret_cast<void *>(uintptr_t(i))), RD_KAFKA_V_END);
            if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL) break;
            rd_kafka_poll(rk_.get(), 50); // the local queue is full: let deliveries drain it
        }
        if (err) {
            if (headers) rd_kafka_headers_destroy(headers); // not taken over on failure
            if (is_message_error(err)) {
                out.fail(i, std::string("kafka refused the message: ") + rd_kafka_err2str(err));
                failed[i] = 1;
                continue;
            }
            rd_kafka_flush(rk_.get(), int(delivery_timeout_.count()));
            throw EnvironmentError("producing to " + topic_ + ": " + rd_kafka_err2str(err));
        }
        ++outstanding_;
    }
    // Delivered only once every report is in.
    const auto deadline = std::chrono::steady_clock::now() + delivery_timeout_ + std::chrono::seconds(5);
    while (outstanding_ > 0 && std::chrono::steady_clock::now() < deadline) rd_kafka_poll(rk_.get(), 100);
    if (outstanding_ > 0) throw EnvironmentError("producing to " + topic_ + ": no delivery report within " +
                                                 std::to_string(delivery_timeout_.count()) + " ms");
    char reason[512];
    if (rd_kafka_resp_err_t f = rd_kafka_fatal_error(rk_.get(), reason, sizeof reason)) {
        // An idempotent producer that lost its sequence state cannot go on;
        // a new one is made for the retry.
        rk_.reset();
        throw EnvironmentError(std::string("the producer failed (") + rd_kafka_err2name(f) + "): " + reason);
    }
    int64_t delivered = 0;
    for (uint32_t i = 0; i < in.size(); ++i) {
        if (failed[i]) continue;
        rd_kafka_resp_err_t err = results_[i];
        if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
            ++delivered;
            continue;
        }
        if (is_message_error(err)) {
            out.fail(i, std::string("kafka refused the message: ") + rd_kafka_err2str(err));
            continue;
        }
        throw EnvironmentError("producing to " + topic_ + ": " + rd_kafka_err2str(err));
    }
    host_.counter("produced", delivered);
}

void KafkaLoader::stop() {
    if (!rk_) return;
    rd_kafka_flush(rk_.get(), int(delivery_timeout_.count()));
    rk_.reset();
}

const void *KafkaLoader::extension(const char *id) const {
    static const sluice_metric metrics[] = {
        {"produced", SLUICE_METRIC_COUNTER, 0, "messages", "messages the brokers acknowledged"},
    };
    static const sluice_metrics_ext ext = {sizeof(sluice_metrics_ext), 1, metrics, 0, 0, nullptr, "produced {produced}"};
    return id && std::strcmp(id, SLUICE_EXT_METRICS) == 0 ? &ext : nullptr;
}

} // namespace sluice::plugins::kafka
