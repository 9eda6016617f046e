// The config both llm stages share: where the model is, how to ask it, and
// the throughput and cost controls. Parsed (and checked) in create().
#pragma once

#include "endpoint.hpp"
#include "http_client.hpp"

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
    int repair_attempts = 1;
    uint32_t max_in_flight = 8;
    std::chrono::milliseconds timeout{60000};
    int max_attempts = 5; // tries per request (timeouts, 429, 5xx)
    std::chrono::milliseconds backoff{500}, max_backoff{30000};
    double requests_per_second = 0; // 0: unlimited
    double tokens_per_minute = 0;
    int64_t token_budget = 0; // 0: unlimited
    std::string cache_path;   // "": no cache

    // `prompt_required`: the stage has no default user prompt.
    static ChatSettings parse(const json::Config &c, const std::string &base_dir);
};

// The JSON Schema properties of the settings above, for the stages' schemas.
#define SLUICE_LLM_COMMON_SCHEMA \
    "\"base_url\": {\"type\": \"string\", \"minLength\": 1, \"description\": \"The API's base URL: http://localhost:11434 (Ollama), https://api.openai.com, http://host:8000 (vLLM, llama.cpp server); requests go to {base_url}/v1/chat/completions\"},\n" \
    "\"model\": {\"type\": \"string\", \"minLength\": 1, \"description\": \"Model name, as the server knows it\"},\n" \
    "\"api_key_env\": {\"type\": \"string\", \"minLength\": 1, \"description\": \"Name of the environment variable holding the API key, sent as 'Authorization: Bearer ...' (never logged or reported)\"},\n" \
    "\"system_prompt\": {\"type\": \"string\", \"description\": \"The system message\"},\n" \
    "\"temperature\": {\"type\": \"number\", \"minimum\": 0, \"description\": \"Sampling temperature (not sent when absent)\"},\n" \
    "\"max_tokens\": {\"type\": \"integer\", \"minimum\": 1, \"description\": \"Longest answer, in tokens (not sent when absent)\"},\n" \
    "\"response_schema\": {\"type\": \"object\", \"description\": \"JSON Schema the answer must match; sent as response_format (json_schema). The answer is checked against it\"},\n" \
    "\"response_json\": {\"type\": \"boolean\", \"default\": false, \"description\": \"Without a schema: the answer must be JSON (response_format json_object); otherwise it is kept as text\"},\n" \
    "\"repair_attempts\": {\"type\": \"integer\", \"minimum\": 0, \"default\": 1, \"description\": \"When the answer is not valid JSON or breaks the schema: how many times to ask again, with the problem, before the record fails\"},\n" \
    "\"max_in_flight\": {\"type\": \"integer\", \"minimum\": 1, \"default\": 8, \"description\": \"Requests in flight at once for the whole stage\"},\n" \
    "\"timeout_ms\": {\"type\": \"integer\", \"minimum\": 1, \"default\": 60000, \"description\": \"Longest wait for one answer\"},\n" \
    "\"retry\": {\"type\": \"object\", \"properties\": {\"max_attempts\": {\"type\": \"integer\", \"minimum\": 1, \"default\": 5}, \"backoff_ms\": {\"type\": \"integer\", \"minimum\": 1, \"default\": 500}, \"max_backoff_ms\": {\"type\": \"integer\", \"minimum\": 1, \"default\": 30000}}, \"description\": \"Tries per request on timeouts, connection failures, 429 and 5xx, with exponential backoff and jitter; a Retry-After header is honoured\"},\n" \
    "\"requests_per_second\": {\"type\": \"number\", \"minimum\": 0, \"description\": \"Most requests started per second (0 or absent: no limit)\"},\n" \
    "\"tokens_per_minute\": {\"type\": \"number\", \"minimum\": 0, \"description\": \"Most tokens (prompt + answer; estimated before, corrected from usage after) per minute\"},\n" \
    "\"token_budget\": {\"type\": \"integer\", \"minimum\": 1, \"description\": \"Tokens the run may spend in all; once spent, the remaining records fail (error policy) with 'token budget spent'\"},\n" \
    "\"cache_path\": {\"type\": \"string\", \"minLength\": 1, \"description\": \"SQLite file caching answers by (model, prompt, parameters), relative to the manifest; a rerun asks nothing it has asked before\"},\n" \
    "\"tls_verify\": {\"type\": \"boolean\", \"default\": true, \"description\": \"https: verify the server's certificate and name\"},\n" \
    "\"ca_file\": {\"type\": \"string\", \"minLength\": 1, \"description\": \"https: extra CA certificates (PEM) to trust, relative to the manifest\"}\n"

} // namespace sluice::plugins::llm
