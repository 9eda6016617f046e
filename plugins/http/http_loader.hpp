// Loader "http" (webhook): POSTs each batch as NDJSON or a JSON array,
// retrying with backoff; a batch that cannot be delivered takes the error
// path. See README.md.
#pragma once

#include <sluice/plugin.hpp>

#include <Poco/Net/HTTPClientSession.h>
#include <Poco/URI.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

namespace sluice::plugins::http {

class HttpLoader {
public:
    static constexpr sluice_kind kind = SLUICE_KIND_LOADER;
    static constexpr const char *name = "http";
    static constexpr const char *version = "1.0.0";
    static constexpr const char *description =
        "POSTs batches of records to a URL (webhook) as NDJSON or a JSON array, with headers, timeout and retries.";
    static constexpr const char *config_schema = R"json({
  "type": "object",
  "required": ["url"],
  "properties": {
    "url": {"type": "string", "minLength": 1, "description": "http:// or https:// URL to POST to"},
    "format": {"type": "string", "enum": ["ndjson", "json"], "default": "ndjson",
               "description": "ndjson: one record per line (application/x-ndjson); json: a JSON array (application/json)"},
    "headers": {"type": "object", "additionalProperties": {"type": "string"}, "description": "Extra request headers"},
    "bearer_token_env": {"type": "string", "minLength": 1, "description": "Environment variable holding a token sent as 'Authorization: Bearer ...'"},
    "timeout_ms": {"type": "integer", "minimum": 1, "default": 30000, "description": "Longest wait for one request"},
    "retry": {"type": "object", "properties": {"max_attempts": {"type": "integer", "minimum": 1, "default": 5}, "backoff_ms": {"type": "integer", "minimum": 1, "default": 500}, "max_backoff_ms": {"type": "integer", "minimum": 1, "default": 30000}},
              "description": "Tries per batch on connection errors, timeouts, 408, 429 and 5xx, with exponential backoff and jitter; Retry-After (seconds) is honoured"},
    "tls_verify": {"type": "boolean", "default": true, "description": "https: verify the certificate"},
    "ca_file": {"type": "string", "minLength": 1, "description": "https: CA certificates (PEM) to trust"}
  }
})json";

    explicit HttpLoader(const Context &ctx);
    void start();
    void process(Input in, Emitter &out);
    void flush(Emitter &out);
    // sluice.delivery/1: a batch the server accepted (2xx) is delivered.
    bool durable_on_process() const { return true; }

private:
    struct Reply {
        int status = 0; // 0: no answer
        std::string error, body, retry_after;
    };
    Reply post(const std::string &body);

    Host host_;
    Poco::URI uri_;
    bool json_array_ = false;
    std::vector<std::pair<std::string, std::string>> headers_;
    std::string token_, ca_file_;
    bool tls_verify_ = true;
    std::chrono::milliseconds timeout_{30000}, backoff_{500}, max_backoff_{30000};
    int max_attempts_ = 5;
    std::unique_ptr<Poco::Net::HTTPClientSession> session_;
    int64_t requests_ = 0, retries_ = 0, bytes_ = 0;
};

} // namespace sluice::plugins::http
