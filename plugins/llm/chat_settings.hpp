// The config both llm stages share: where the model is, how to ask it, and
// the throughput and cost controls. Parsed (and checked) in create().
#pragma once

#include "endpoint.hpp"
#include "http_client.hpp"

#include <sluice/config_spec.hpp>
#include <sluice/json.hpp>

#include <boost/json.hpp>

#include <chrono>
#include <cstdint>
#include <string>

namespace sluice::plugins::llm {

struct ChatSettings {
    Endpoint endpoint;
    TlsOptions tls;
    std::string model;
    std::string api_key; // from the environment variable named in api_key_env; never logged
    std::string system_prompt;
    bool has_temperature = false;
    double temperature = 0;
    int64_t max_tokens = 0;             // 0: not sent
    boost::json::value response_schema; // null: none
    bool json_answer = false;           // the answer must be JSON (implied by a schema)
    int repair_attempts = 0;
    uint32_t max_in_flight = 0;
    std::chrono::milliseconds timeout{0};
    config::RetrySettings retry; // tries per request (timeouts, 429, 5xx)
    double requests_per_second = 0; // 0: unlimited
    double tokens_per_minute = 0;
    int64_t token_budget = 0; // 0: unlimited
    std::string cache_path;   // "": no cache

    // The config fields both stages share, declared once.
    static config::Spec spec();
    // From a config with the spec's defaults applied.
    static ChatSettings parse(const json::Config &c, const std::string &base_dir);
    // sluice.preflight/1: the endpoint accepts connections.
    std::vector<std::string> preflight() const;
};

} // namespace sluice::plugins::llm
