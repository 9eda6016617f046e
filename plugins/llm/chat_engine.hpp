// Asks an OpenAI-compatible chat-completions endpoint, for any number of
// callers at once, and keeps it busy without paying twice:
//  - at most max_in_flight requests at a time (coroutines on one I/O thread,
//    not a thread per request), started no faster than the request and token
//    rate limits allow;
//  - identical requests in flight share one call; answers already in the
//    cache are not asked again;
//  - timeouts, connection failures, 429 and 5xx are retried with exponential
//    backoff and jitter, honouring Retry-After;
//  - an answer that is not JSON or breaks the schema is sent back with the
//    problem for repair_attempts more tries;
//  - once token_budget is spent, nothing more is asked.
#pragma once

#include "answer_check.hpp"
#include "chat_settings.hpp"
#include "http_client.hpp"
#include "latency_histogram.hpp"
#include "response_cache.hpp"
#include "token_bucket.hpp"

#include <sluice/plugin.hpp>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/json.hpp>

#include <array>
#include <atomic>
#include <deque>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <string>

namespace sluice::plugins::llm {

struct ChatAnswer {
    bool ok = false;
    boost::json::value value; // the answer: parsed JSON, or a string for text answers
    std::string error;        // why there is none
    std::string reply;        // the model's last reply, when it was the problem
    bool budget_spent = false;
    bool from_cache = false;
};

class ChatEngine {
public:
    // Opens the cache and starts the HTTP client. Throws std::runtime_error.
    ChatEngine(ChatSettings settings, Host host);
    ~ChatEngine();
    // For a stage's start(): the engine, or sluice::Error with the reason.
    static std::unique_ptr<ChatEngine> start(const ChatSettings &settings, Host host);

    // [any thread] The answer to `user_message`. `schema`: a schema for this
    // request instead of the settings' one (micro-batches); it implies JSON.
    std::shared_future<ChatAnswer> ask(const std::string &user_message, const boost::json::value *schema = nullptr);
    // [any thread] Stores the answers received since the last call.
    void commit_cache();
    // [any thread] Adds what the counters gained since the last call to the
    // stage's counters (called after every batch, so /metrics is live).
    void report_counters();
    // [any thread] The latency percentiles of the run (gauges: the host
    // keeps the largest value reported, so only once, at flush).
    void report_latency() const;

    const ChatSettings &settings() const { return settings_; }

    struct Counters {
        std::atomic<int64_t> requests{0}, retries{0}, repairs{0}, cache_hits{0}, deduplicated{0}, prompt_tokens{0},
            completion_tokens{0}, budget_refusals{0}, failed_requests{0};
    };
    const Counters &counters() const { return counters_; }
    double latency_percentile(double p) const { return latency_.percentile(p); }

private:
    struct Call; // one conversation, shared by every caller asking the same
    struct Reply {
        bool ok = false;
        std::string content, error;
        bool budget_spent = false;
    };

    std::string request_body(const boost::json::array &messages, const boost::json::value &schema, bool json) const;
    boost::asio::awaitable<void> converse(std::shared_ptr<Call> call);
    boost::asio::awaitable<Reply> send(const std::string &body, const std::string &key);
    boost::asio::awaitable<void> acquire_slot();
    void release_slot();
    void finish(const std::shared_ptr<Call> &call, ChatAnswer answer);
    std::chrono::milliseconds backoff(int attempt, const std::string &retry_after) const;

    ChatSettings settings_;
    Host host_;
    std::unique_ptr<ResponseCache> cache_;
    std::unique_ptr<HttpClient> client_;

    std::mutex mutex_;                               // guards in_flight_
    std::mutex report_mutex_;                        // guards reported_
    std::array<int64_t, 9> reported_{};              // counter values already reported
    std::map<std::string, std::shared_ptr<Call>> in_flight_; // by request key

    // I/O thread only.
    uint32_t free_slots_;
    std::deque<std::shared_ptr<boost::asio::steady_timer>> waiting_;
    TokenBucket request_rate_, token_rate_;

    std::atomic<int64_t> tokens_spent_{0};
    Counters counters_;
    LatencyHistogram latency_;
};

} // namespace sluice::plugins::llm
