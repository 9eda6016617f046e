#include "chat_settings.hpp"

#include "../common/reachable.hpp"

#include <cstdlib>

namespace sluice::plugins::llm {

namespace {
std::string resolve(const std::string &base, const std::string &p) {
    if (p.empty() || p.front() == '/' || base.empty()) return p;
    return base + (base.back() == '/' ? "" : "/") + p;
}
} // namespace

config::Spec ChatSettings::spec() {
    using config::Field;
    return config::Spec{
        Field::string("base_url", "The API's base URL: http://localhost:11434 (Ollama), https://api.openai.com, "
                                  "http://host:8000 (vLLM, llama.cpp server); requests go to "
                                  "{base_url}/v1/chat/completions")
            .required()
            .not_empty(),
        Field::string("model", "Model name, as the server knows it").required().not_empty(),
        Field::string("api_key_env", "Name of the environment variable holding the API key, sent as "
                                     "'Authorization: Bearer ...' (never logged or reported)")
            .not_empty(),
        Field::string("api_key", "The API key itself, as a reference: ${VARIABLE} or ${file:PATH} (takes "
                                 "precedence over api_key_env)")
            .secret(),
        Field::string("system_prompt", "The system message"),
        Field::number("temperature", "Sampling temperature (not sent when absent)").minimum(0),
        Field::integer("max_tokens", "Longest answer, in tokens (not sent when absent)").minimum(1),
        Field::map("response_schema", "",
                   "JSON Schema the answer must match; sent as response_format (json_schema) and checked on arrival"),
        Field::boolean("response_json", "Without a schema: the answer must be JSON (response_format json_object); "
                                        "otherwise it is kept as text")
            .default_to(false),
        Field::integer("repair_attempts", "An answer that is not JSON or breaks the schema is sent back with the "
                                          "problem this many times before the record fails")
            .minimum(0)
            .default_to(1),
        Field::integer("max_in_flight", "Requests in flight at once for the whole stage (async on one I/O thread, "
                                        "not a thread per request)")
            .minimum(1)
            .default_to(8),
        Field::integer("timeout_ms", "Longest wait for one answer").minimum(1).default_to(60000),
    }
        .include(config::retry("per request on timeouts, connection failures, 408, 429 and 5xx"))
        .add(Field::number("requests_per_second", "Most requests started per second (absent: no limit)").minimum(0))
        .add(Field::number("tokens_per_minute", "Most tokens a minute (estimated from the prompt and max_tokens "
                                                "before a request, corrected from usage after; absent: no limit)")
                 .minimum(0))
        .add(Field::integer("token_budget",
                            "Tokens (prompt + completion) the run may spend; once spent, every further record fails "
                            "with 'token budget spent (N tokens)' and follows the stage's on_error. Requests already "
                            "in flight may overshoot by what they cost (absent: no limit)")
                 .minimum(1))
        .add(Field::string("cache_path", "SQLite file (WAL) of answers keyed by SHA-256 of (model, messages, "
                                         "parameters, schema), relative to the manifest: a rerun asks nothing it "
                                         "asked before")
                 .not_empty())
        .include(config::tls_client());
}

std::vector<std::string> ChatSettings::preflight() const {
    if (std::string p = tcp_reachable(endpoint.host, endpoint.port, std::chrono::seconds(3)); !p.empty())
        return {"base_url: " + p + " (is the model server running?)"};
    return {};
}

ChatSettings ChatSettings::parse(const json::Config &c, const std::string &base_dir) {
    ChatSettings s;
    try {
        s.endpoint = Endpoint::parse(c.required_string("base_url"));
    } catch (const std::invalid_argument &e) {
        c.fail("base_url", e.what());
    }
    s.model = c.required_string("model");
    if (std::string key = c.string("api_key"); !key.empty()) {
        s.api_key = key;
    } else if (std::string env = c.string("api_key_env"); !env.empty()) {
        const char *key = std::getenv(env.c_str());
        if (!key || !*key) c.fail("api_key_env", "environment variable " + env + " is not set");
        s.api_key = key;
    }
    s.system_prompt = c.string("system_prompt");
    if (const auto *t = c.find("temperature"); t && !t->is_null()) {
        s.has_temperature = true;
        s.temperature = c.number("temperature", 0);
    }
    s.max_tokens = c.integer("max_tokens", 0);
    if (const auto *schema = c.find("response_schema"); schema && !schema->is_null()) {
        if (!schema->is_object()) c.fail("response_schema", "expected a JSON Schema object");
        s.response_schema = *schema;
        s.json_answer = true;
    }
    s.json_answer = s.json_answer || c.boolean("response_json");
    s.repair_attempts = int(c.integer("repair_attempts"));
    s.max_in_flight = uint32_t(c.integer("max_in_flight"));
    s.timeout = std::chrono::milliseconds(c.integer("timeout_ms"));
    s.retry = config::RetrySettings::read(c);
    s.requests_per_second = c.number("requests_per_second", 0);
    s.tokens_per_minute = c.number("tokens_per_minute", 0);
    s.token_budget = c.integer("token_budget", 0);
    if (std::string p = c.string("cache_path"); !p.empty()) s.cache_path = resolve(base_dir, p);
    s.tls.verify = c.boolean("tls_verify");
    if (std::string p = c.string("ca_file"); !p.empty()) s.tls.ca_file = resolve(base_dir, p);
    return s;
}

} // namespace sluice::plugins::llm
