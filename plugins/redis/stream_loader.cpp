#include "stream_loader.hpp"

#include <cstring>

namespace sluice::plugins::redis {

config::Spec StreamLoader::config_spec() {
    using config::Field;
    return config::Spec{
        Field::string("stream", "The stream's key").required().not_empty(),
        Field::choice("format", {"body", "fields"},
                      "body: the payload goes into body_field as it is; fields: a JSON object record's top-level "
                      "members become the entry's fields (strings as they are, other values as JSON text)")
            .default_to("body"),
        Field::string("body_field", "format body: the field that holds the payload").not_empty().default_to("body"),
        Field::strings("attribute_fields", "Record attributes written as fields of the entry too (e.g. redis_id, "
                                           "source); a record without one gets no such field")
            .default_to(boost::json::array{}),
        Field::integer("max_length", "Trim the stream to about this many entries with each XADD (MAXLEN ~); 0: "
                                     "never trim")
            .minimum(0)
            .default_to(0),
    }
        .include(endpoint_spec());
}

StreamLoader::StreamLoader(const Context &ctx) : host_(ctx.host) {
    json::Config c(ctx.config_json);
    endpoint_ = Endpoint::read(c, ctx);
    stream_ = c.required_string("stream");
    whole_record_ = c.string("format", "body") == "fields";
    body_field_ = c.string("body_field", "body");
    attribute_fields_ = c.strings("attribute_fields");
    if (int64_t n = c.integer("max_length", 0); n > 0) maxlen_ = std::to_string(n);
}

void StreamLoader::process(Input in, Emitter &out) {
    if (!conn_ || conn_->broken()) conn_ = std::make_unique<Connection>(endpoint_);
    commands_.clear();
    sent_.clear();
    std::vector<std::pair<std::string_view, std::string_view>> fields;
    std::vector<std::string> values; // JSON text of non-string members
    for (uint32_t i = 0; i < in.size(); ++i) {
        Record r = in[i];
        fields.clear();
        values.clear();
        if (whole_record_) {
            std::string error;
            const boost::json::object *o = parser_.parse_object(r.payload(), error);
            if (!o) {
                out.fail(i, error);
                continue;
            }
            if (o->empty()) {
                out.fail(i, "an empty object makes no stream entry (XADD needs a field)");
                continue;
            }
            values.reserve(o->size());
            for (const auto &m : *o) {
                if (m.value().is_string()) {
                    fields.emplace_back(m.key(), std::string_view(m.value().get_string()));
                } else {
                    values.push_back(boost::json::serialize(m.value()));
                    fields.emplace_back(m.key(), values.back());
                }
            }
        } else {
            fields.emplace_back(body_field_, r.payload());
        }
        for (const std::string &a : attribute_fields_)
            if (auto v = r.attr(a)) fields.emplace_back(a, *v);
        commands_.begin(3 + (maxlen_.empty() ? 0 : 3) + 2 * fields.size());
        commands_.arg("XADD");
        commands_.arg(stream_);
        if (!maxlen_.empty()) {
            commands_.arg("MAXLEN");
            commands_.arg("~");
            commands_.arg(maxlen_);
        }
        commands_.arg("*");
        for (const auto &[f, v] : fields) {
            commands_.arg(f);
            commands_.arg(v);
        }
        sent_.push_back(i);
    }
    if (sent_.empty()) return;
    // A lost connection throws EnvironmentError: the batch is sent again
    // after a backoff (entries added before the loss are then added twice:
    // at least once).
    std::vector<Reply> replies = conn_->run(commands_);
    int64_t added = 0;
    for (size_t k = 0; k < replies.size(); ++k) {
        const redisReply *r = replies[k].get();
        if (!is_error(r)) {
            ++added;
            continue;
        }
        // With an id of "*", the server cannot refuse an entry for what it
        // holds: any error (OOM, READONLY, NOPERM, WRONGTYPE, "ERR max number
        // of clients reached" ...) is about the server, never the record.
        throw EnvironmentError("XADD to " + endpoint_.display() + "/" + stream_ + ": " + std::string(text(r)));
    }
    host_.counter("added", added);
}

const void *StreamLoader::extension(const char *id) const {
    static const sluice_metric metrics[] = {
        {"added", SLUICE_METRIC_COUNTER, 0, "entries", "entries the server added to the stream"},
    };
    static const sluice_metrics_ext ext = {sizeof(sluice_metrics_ext), 1, metrics, 0, 0, nullptr, "added {added}"};
    return id && std::strcmp(id, SLUICE_EXT_METRICS) == 0 ? &ext : nullptr;
}

} // namespace sluice::plugins::redis
