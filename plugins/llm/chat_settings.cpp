#include "chat_settings.hpp"

#include <cstdlib>

namespace sluice::plugins::llm {

namespace {
std::string resolve(const std::string &base, const std::string &p) {
    if (p.empty() || p.front() == '/' || base.empty()) return p;
    return base + (base.back() == '/' ? "" : "/") + p;
}
} // namespace

ChatSettings ChatSettings::parse(const json::Config &c, const std::string &base_dir) {
    ChatSettings s;
    try {
        s.endpoint = Endpoint::parse(c.required_string("base_url"));
    } catch (const std::invalid_argument &e) {
        c.fail("base_url", e.what());
    }
    s.model = c.required_string("model");
    if (std::string env = c.string("api_key_env"); !env.empty()) {
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
    s.json_answer = s.json_answer || c.boolean("response_json", false);
    s.repair_attempts = int(c.integer("repair_attempts", 1));
    s.max_in_flight = uint32_t(std::max<int64_t>(1, c.integer("max_in_flight", 8)));
    s.timeout = std::chrono::milliseconds(std::max<int64_t>(1, c.integer("timeout_ms", 60000)));
    json::Config retry = c.child("retry");
    s.max_attempts = int(std::max<int64_t>(1, retry.integer("max_attempts", 5)));
    s.backoff = std::chrono::milliseconds(std::max<int64_t>(1, retry.integer("backoff_ms", 500)));
    s.max_backoff = std::chrono::milliseconds(std::max<int64_t>(1, retry.integer("max_backoff_ms", 30000)));
    s.requests_per_second = c.number("requests_per_second", 0);
    s.tokens_per_minute = c.number("tokens_per_minute", 0);
    s.token_budget = c.integer("token_budget", 0);
    if (std::string p = c.string("cache_path"); !p.empty()) s.cache_path = resolve(base_dir, p);
    s.tls.verify = c.boolean("tls_verify", true);
    if (std::string p = c.string("ca_file"); !p.empty()) s.tls.ca_file = resolve(base_dir, p);
    return s;
}

} // namespace sluice::plugins::llm
