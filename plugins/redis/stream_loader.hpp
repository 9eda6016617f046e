// Loader "redis": appends records to a Redis stream with XADD, a batch in
// one pipelined round trip, optionally trimming it (MAXLEN ~). A batch is
// delivered once the server has answered every XADD. See README.md.
#pragma once

#include "redis_connection.hpp"

#include <sluice/config_spec.hpp>
#include <sluice/json.hpp>
#include <sluice/plugin.hpp>

#include <memory>
#include <string>
#include <vector>

namespace sluice::plugins::redis {

class StreamLoader {
public:
    static constexpr sluice_kind kind = SLUICE_KIND_LOADER;
    static constexpr const char *name = "redis";
    static constexpr const char *version = "1.0.0";
    static constexpr const char *description =
        "Appends records to a Redis stream (XADD), one pipelined round trip per batch, optional MAXLEN ~ trimming; "
        "records are delivered once the server has answered.";
    static constexpr uint64_t capabilities = 0;
    static config::Spec config_spec();

    explicit StreamLoader(const Context &ctx);
    std::vector<std::string> preflight() const { return stream_preflight(endpoint_, stream_); }
    void start() { conn_ = std::make_unique<Connection>(endpoint_); }
    void process(Input in, Emitter &out);
    void stop() { conn_.reset(); }
    // sluice.delivery/1: every XADD of a batch has its reply when process returns.
    bool durable_on_process() const { return true; }
    const void *extension(const char *id) const;

private:
    Host host_;
    Endpoint endpoint_;
    std::string stream_, body_field_, maxlen_;
    bool whole_record_ = false;
    std::vector<std::string> attribute_fields_;
    std::unique_ptr<Connection> conn_;
    json::RecordParser parser_;
    CommandBuffer commands_;
    std::vector<uint32_t> sent_; // input index of each XADD in commands_
    std::string scratch_;
};

} // namespace sluice::plugins::redis
