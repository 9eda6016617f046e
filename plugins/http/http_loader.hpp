// Loader "http" (webhook): POSTs each batch as NDJSON or a JSON array,
// retrying with backoff; a batch that cannot be delivered takes the error
// path. See README.md.
#pragma once

#include <sluice/config_spec.hpp>
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
    // A request per call: batches waiting for it are joined into one
    // (split again at max_request_bytes).
    static constexpr uint64_t capabilities = SLUICE_CAP_COMMIT_WINDOWS;
    static config::Spec config_spec() {
        using config::Field;
        return config::Spec{
            Field::string("url", "http:// or https:// URL to POST to").required().not_empty(),
            Field::choice("format", {"ndjson", "json"},
                          "ndjson: one record per line (application/x-ndjson); json: a JSON array (application/json)")
                .default_to("ndjson"),
            Field::map("headers", R"({"type": "string"})", "Extra request headers, {\"X-Source\": \"sluice\"}"),
            Field::string("bearer_token_env",
                          "Environment variable holding a token sent as 'Authorization: Bearer ...'")
                .not_empty(),
            Field::string("bearer_token", "The token itself, as a reference: ${VARIABLE} or ${file:PATH} (takes "
                                          "precedence over bearer_token_env)")
                .secret(),
            Field::integer("timeout_ms", "Longest wait for one request").minimum(1).default_to(30000),
            Field::integer("max_request_bytes",
                           "Largest request body: a call's records are sent in as many requests as this needs "
                           "(a record larger than it goes alone)")
                .minimum(1)
                .default_to(1 << 20),
        }
            .include(config::retry("per batch on connection errors, timeouts, 408, 429 and 5xx"))
            .include(config::tls_client());
    }

    explicit HttpLoader(const Context &ctx);
    // sluice.preflight/1: the server accepts connections.
    std::vector<std::string> preflight() const;
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
    // One request (with retries) of the records `sent`; a refusal fails
    // them, an endpoint that cannot take anything throws EnvironmentError.
    void send(const std::string &body, const std::vector<uint32_t> &sent, Emitter &out);

    Host host_;
    Poco::URI uri_;
    bool json_array_ = false;
    std::vector<std::pair<std::string, std::string>> headers_;
    std::string token_, ca_file_;
    bool tls_verify_ = true;
    std::chrono::milliseconds timeout_{0};
    size_t max_request_bytes_ = 1 << 20;
    config::RetrySettings retry_;
    std::unique_ptr<Poco::Net::HTTPClientSession> session_;
    int64_t requests_ = 0, retries_ = 0, bytes_ = 0;
};

} // namespace sluice::plugins::http
