// Extractor "http" (real time): an HTTP server that takes records POSTed as
// NDJSON or a JSON array. A pipeline with it runs until it is signalled.
// See README.md.
#pragma once

#include "ingest_buffer.hpp"
#include "ingest_request.hpp"
#include "ingest_server.hpp"

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
    static constexpr const char *config_schema = R"json({
  "type": "object",
  "required": ["port"],
  "properties": {
    "address": {"type": "string", "minLength": 1, "default": "127.0.0.1", "description": "Address to listen on (0.0.0.0 for every interface)"},
    "port": {"type": "integer", "minimum": 0, "maximum": 65535, "description": "Port to listen on (0: any free port, logged at start)"},
    "path": {"type": "string", "minLength": 1, "default": "/ingest", "description": "The path records are POSTed to"},
    "max_body_bytes": {"type": "integer", "minimum": 1, "default": 10485760, "description": "Larger requests get 413 (compressed ones: also once inflated past it)"},
    "buffer_records": {"type": "integer", "minimum": 1, "default": 10000, "description": "Records accepted but not yet in the pipeline; when full, requests get 429 with Retry-After"},
    "bearer_token_env": {"type": "string", "minLength": 1, "description": "Environment variable holding the token clients must send as 'Authorization: Bearer ...' (otherwise 401)"},
    "server_threads": {"type": "integer", "minimum": 1, "maximum": 64, "default": 2, "description": "Threads serving connections (asynchronous: a connection or a request waiting for delivery holds no thread)"},
    "max_connections": {"type": "integer", "minimum": 1, "default": 1024, "description": "Open connections at most; past it a new one gets 503 and is closed"},
    "read_timeout_ms": {"type": "integer", "minimum": 1, "default": 10000, "description": "A request's head (line and headers) must arrive within this, counted from the connection's start or the previous answer: idle and slowloris connections are closed"},
    "body_timeout_ms": {"type": "integer", "minimum": 1, "default": 60000, "description": "A request's body must arrive within this"},
    "max_requests_per_connection": {"type": "integer", "minimum": 1, "default": 1000, "description": "Keep-alive: requests served on one connection before it is closed"},
    "retry_after_s": {"type": "integer", "minimum": 1, "default": 1, "description": "Retry-After sent with 429"},
    "respond": {"type": "string", "enum": ["delivered", "accepted"], "default": "delivered",
                "description": "delivered: answer 202 only once every record of the request is loaded, dead-lettered or dropped by rule downstream (at-least-once for the client); accepted: as soon as they are buffered"},
    "delivery_timeout_ms": {"type": "integer", "minimum": 1, "default": 30000,
                            "description": "delivered: longest wait before answering 504 (the records may still arrive; a client retry may duplicate them)"},
    "tls_cert_file": {"type": "string", "minLength": 1, "description": "HTTPS: the server certificate (PEM, chain included); needs tls_key_file"},
    "tls_key_file": {"type": "string", "minLength": 1, "description": "HTTPS: the certificate's private key (PEM)"},
    "tls_client_ca_file": {"type": "string", "minLength": 1, "description": "HTTPS: require client certificates signed by these CAs (PEM; mutual TLS)"}
  }
})json";

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

private:
    void shut_down();

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
