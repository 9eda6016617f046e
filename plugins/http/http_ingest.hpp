// Extractor "http" (real time): an HTTP server that takes records POSTed as
// NDJSON or a JSON array. A pipeline with it runs until it is signalled.
// See README.md.
#pragma once

#include "ingest_buffer.hpp"
#include "ingest_request.hpp"
#include "ingest_server.hpp"

#include <sluice/config_spec.hpp>
#include <sluice/plugin.hpp>

#include <chrono>
#include <memory>
#include <string>

namespace sluice::plugins::http {

class HttpIngest {
public:
    static constexpr sluice_kind kind = SLUICE_KIND_EXTRACTOR;
    static constexpr const char *name = "http";
    static constexpr const char *version = "1.0.0";
    static constexpr const char *description =
        "Receives records over HTTP: POST NDJSON or a JSON array (plain, gzip or deflate); 202 once they are delivered (or accepted), 429 "
        "when the pipeline is behind, 400 with the line of a bad record, 413 over the size limit, 401 without the token.";
    static constexpr uint64_t capabilities = SLUICE_CAP_SINGLE_WORKER;
    static config::Spec config_spec() {
        using config::Field;
        return config::Spec{
            Field::string("address", "Address to listen on (0.0.0.0 for every interface)")
                .not_empty()
                .default_to("127.0.0.1"),
            Field::integer("port", "Port to listen on (0: any free port, logged at start)")
                .required()
                .minimum(0)
                .maximum(65535),
            Field::string("path", "The path records are POSTed to").not_empty().default_to("/ingest"),
            Field::integer("max_body_bytes", "Larger requests get 413 (compressed ones: also once inflated past it)")
                .minimum(1)
                .default_to(10485760),
            Field::integer("buffer_records", "Records accepted but not yet pulled into the pipeline; the bound that "
                                             "turns backpressure into 429 with Retry-After")
                .minimum(1)
                .default_to(10000),
            Field::string("bearer_token_env", "Environment variable holding the token clients must send as "
                                              "'Authorization: Bearer ...' (otherwise 401)")
                .not_empty(),
            Field::integer("server_threads", "Threads serving connections; the server is asynchronous, so an open "
                                             "connection or a request waiting for delivery holds no thread")
                .minimum(1)
                .maximum(64)
                .default_to(2),
            Field::integer("max_connections", "Open connections at most; past it a new one gets 503 and is closed")
                .minimum(1)
                .default_to(1024),
            Field::integer("read_timeout_ms",
                           "A request's head (line and headers) must arrive within this, counted from the "
                           "connection's start or the previous answer: idle and slowloris connections are closed")
                .minimum(1)
                .default_to(10000),
            Field::integer("body_timeout_ms", "A request's body must arrive within this").minimum(1).default_to(60000),
            Field::integer("max_requests_per_connection",
                           "Keep-alive: requests served on one connection before it is closed")
                .minimum(1)
                .default_to(1000),
            Field::integer("retry_after_s", "Retry-After sent with 429").minimum(1).default_to(1),
            Field::choice("respond", {"delivered", "accepted"},
                          "delivered: answer 202 only once every record of the request is loaded, dead-lettered or "
                          "dropped by rule downstream (at least once for the client); accepted: as soon as they are "
                          "buffered")
                .default_to("delivered"),
            Field::integer("delivery_timeout_ms", "delivered: longest wait before answering 504 (the records may "
                                                  "still arrive; a client retry may duplicate them)")
                .minimum(1)
                .default_to(30000),
        }
            .include(config::tls_server());
    }

    explicit HttpIngest(const Context &ctx);
    ~HttpIngest();
    void start();
    bool pull(Emitter &out, uint32_t max_records);
    // End of the run: stops taking requests, then passes on what was accepted.
    void flush(Emitter &out);
    void stop();
    // sluice.checkpoint/1: the number of the last record pulled; a stream
    // cannot be resumed, so restore ignores old positions.
    std::string checkpoint() const;
    void restore(std::string_view) {}
    // sluice.acknowledged/1: records up to that number are delivered; wakes
    // the requests waiting for them.
    void acknowledged(std::string_view position);
    // sluice.metrics/1: requests by status code.
    const void *extension(const char *id) const;

private:
    void shut_down();
    // Counts what the server answered and logs what it refused (the first
    // kRefusalsLogged, then only counts).
    void report_answers();

    static constexpr uint64_t kRefusalsLogged = 20;
    std::shared_ptr<AnswerLog> answers_ = std::make_shared<AnswerLog>();
    uint64_t refusals_logged_ = 0;
    Host host_;
    std::string address_;
    int port_ = 0;
    size_t buffer_records_ = 10000;
    ServerLimits limits_;
    std::string tls_cert_, tls_key_, tls_client_ca_;
    std::shared_ptr<boost::asio::ssl::context> tls_; // null: plain HTTP
    IngestSettings settings_;
    std::shared_ptr<IngestBuffer> buffer_;
    std::unique_ptr<IngestServer> server_;
};

} // namespace sluice::plugins::http
