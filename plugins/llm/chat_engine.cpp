#include "chat_engine.hpp"

#include <sluice/backoff.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/use_awaitable.hpp>


namespace sluice::plugins::llm {

namespace asio = boost::asio;
namespace bj = boost::json;
using asio::use_awaitable;
using Clock = std::chrono::steady_clock;

namespace {

std::string excerpt(const std::string &s, size_t n = 300) {
    std::string out = s.size() > n ? s.substr(0, n) + "..." : s;
    for (char &c : out)
        if (c == '\n' || c == '\r') c = ' ';
    return out;
}

// What the server said went wrong, from an OpenAI-style error body.
std::string server_message(const std::string &body) {
    boost::system::error_code ec;
    bj::value v = bj::parse(body, ec);
    if (!ec && v.is_object()) {
        if (const bj::value *e = v.as_object().if_contains("error")) {
            if (e->is_string()) return std::string(e->get_string());
            if (e->is_object())
                if (const bj::value *m = e->as_object().if_contains("message"); m && m->is_string())
                    return std::string(m->get_string());
        }
    }
    return excerpt(body);
}

} // namespace

struct ChatEngine::Call {
    std::string key, body;
    bj::array messages;
    bj::value schema;
    bool json = false;
    std::promise<ChatAnswer> promise;
    std::shared_future<ChatAnswer> future;
};

ChatEngine::ChatEngine(ChatSettings settings, Host host)
    : settings_(std::move(settings)), host_(host), free_slots_(settings_.max_in_flight),
      // Paced, with a burst of one request / one second's tokens: no window
      // of a second (a minute) ever sees much more than the limit.
      request_rate_(settings_.requests_per_second, 1.0),
      token_rate_(settings_.tokens_per_minute / 60.0, std::max(1.0, settings_.tokens_per_minute / 60.0)) {
    if (!settings_.cache_path.empty()) cache_ = std::make_unique<ResponseCache>(settings_.cache_path);
    client_ = std::make_unique<HttpClient>(settings_.endpoint, settings_.tls, settings_.timeout);
}

std::unique_ptr<ChatEngine> ChatEngine::start(const ChatSettings &settings, Host host) {
    try {
        return std::make_unique<ChatEngine>(settings, host);
    } catch (const std::exception &e) {
        throw Error(e.what());
    }
}

ChatEngine::~ChatEngine() {
    client_->stop(); // nothing runs on the state below after this
    waiting_.clear(); // timers go before the I/O context they belong to
    client_.reset();
    // Callers still waiting (the run is being torn down) get an answer.
    std::lock_guard lock(mutex_);
    for (auto &[key, call] : in_flight_) {
        ChatAnswer a;
        a.error = "the stage stopped before the model answered";
        try {
            call->promise.set_value(std::move(a));
        } catch (const std::future_error &) {
        }
    }
}

std::string ChatEngine::request_body(const bj::array &messages, const bj::value &schema, bool json) const {
    bj::object req;
    req["model"] = settings_.model;
    req["messages"] = messages;
    if (settings_.has_temperature) req["temperature"] = settings_.temperature;
    if (settings_.max_tokens > 0) req["max_tokens"] = settings_.max_tokens;
    if (!schema.is_null())
        req["response_format"] = bj::object{
            {"type", "json_schema"},
            {"json_schema", bj::object{{"name", "answer"}, {"schema", schema}}}};
    else if (json)
        req["response_format"] = bj::object{{"type", "json_object"}};
    return bj::serialize(req);
}

std::shared_future<ChatAnswer> ChatEngine::ask(const std::string &user_message, const bj::value *schema) {
    auto call = std::make_shared<Call>();
    if (!settings_.system_prompt.empty())
        call->messages.push_back(bj::object{{"role", "system"}, {"content", settings_.system_prompt}});
    call->messages.push_back(bj::object{{"role", "user"}, {"content", user_message}});
    call->schema = schema ? *schema : settings_.response_schema;
    call->json = schema || settings_.json_answer;
    call->body = request_body(call->messages, call->schema, call->json);
    // The request is the cache key: same model, prompt and parameters, same answer.
    call->key = ResponseCache::key_of(call->body);

    if (cache_) {
        if (auto hit = cache_->find(call->key)) {
            ChatAnswer a;
            std::string problem = call->json ? parse_answer(hit->content, call->schema, a.value) : "";
            if (problem.empty()) {
                if (!call->json) a.value = bj::string(hit->content);
                a.ok = true;
                a.from_cache = true;
                counters_.cache_hits.fetch_add(1, std::memory_order_relaxed);
                std::promise<ChatAnswer> p;
                p.set_value(std::move(a));
                return p.get_future().share();
            }
        }
    }
    {
        std::lock_guard lock(mutex_);
        if (auto it = in_flight_.find(call->key); it != in_flight_.end()) {
            counters_.deduplicated.fetch_add(1, std::memory_order_relaxed);
            return it->second->future;
        }
        call->future = call->promise.get_future().share();
        in_flight_.emplace(call->key, call);
    }
    asio::co_spawn(client_->io(), converse(call), asio::detached);
    return call->future;
}

void ChatEngine::finish(const std::shared_ptr<Call> &call, ChatAnswer answer) {
    {
        std::lock_guard lock(mutex_);
        in_flight_.erase(call->key);
    }
    call->promise.set_value(std::move(answer));
}

asio::awaitable<void> ChatEngine::converse(std::shared_ptr<Call> call) {
    ChatAnswer answer;
    try {
        bj::array messages = call->messages;
        std::string body = call->body;
        for (int round = 0;; ++round) {
            Reply r = co_await send(body, call->key);
            if (!r.ok) {
                answer.error = r.error;
                answer.budget_spent = r.budget_spent;
                break;
            }
            std::string problem;
            if (call->json) problem = parse_answer(r.content, call->schema, answer.value);
            else answer.value = bj::string(r.content);
            if (problem.empty()) {
                answer.ok = true;
                if (cache_) cache_->put(call->key, settings_.model, CachedAnswer{r.content, 0, 0});
                break;
            }
            answer.reply = r.content;
            if (round >= settings_.repair_attempts) {
                answer.error = problem + (round > 0 ? " (after " + std::to_string(round) + " repair attempts)" : "");
                break;
            }
            // Once more, with the problem: models usually fix their answer.
            counters_.repairs.fetch_add(1, std::memory_order_relaxed);
            messages.push_back(bj::object{{"role", "assistant"}, {"content", r.content}});
            messages.push_back(bj::object{
                {"role", "user"},
                {"content", "Your answer was not valid: " + problem +
                                ". Reply again with only the corrected JSON, nothing else."}});
            body = request_body(messages, call->schema, call->json);
        }
    } catch (const std::exception &e) {
        answer.ok = false;
        answer.error = std::string("internal error: ") + e.what();
    }
    finish(call, std::move(answer));
}

asio::awaitable<void> ChatEngine::acquire_slot() {
    if (free_slots_ > 0) {
        --free_slots_;
        co_return;
    }
    auto timer = std::make_shared<asio::steady_timer>(client_->io(), asio::steady_timer::time_point::max());
    waiting_.push_back(timer);
    boost::system::error_code ec;
    try {
        co_await timer->async_wait(use_awaitable);
    } catch (const boost::system::system_error &) {
        // Cancelled by release_slot: the slot is ours.
    }
}

void ChatEngine::release_slot() {
    if (!waiting_.empty()) {
        auto next = waiting_.front();
        waiting_.pop_front();
        next->cancel(); // hands the slot over
    } else {
        ++free_slots_;
    }
}

std::chrono::milliseconds ChatEngine::backoff(int attempt, const std::string &retry_after) const {
    auto d = backoff_delay(settings_.retry.backoff, settings_.retry.max_backoff, uint32_t(attempt) + 1);
    // Retry-After in seconds (an HTTP date is rare from these APIs; the
    // backoff stands in for it).
    if (!retry_after.empty() && retry_after.find_first_not_of("0123456789") == std::string::npos &&
        retry_after.size() < 7) {
        auto server = std::chrono::milliseconds(std::stoll(retry_after) * 1000);
        if (server > d) d = server;
    }
    return d;
}

asio::awaitable<ChatEngine::Reply> ChatEngine::send(const std::string &body, const std::string &key) {
    (void)key;
    Reply out;
    HttpClient::Headers headers;
    if (!settings_.api_key.empty()) headers.emplace_back("Authorization", "Bearer " + settings_.api_key);
    // Tokens this request may cost, for the per-minute limit, until usage
    // says what it did cost.
    const double estimate = double(body.size()) / 4.0 + double(settings_.max_tokens > 0 ? settings_.max_tokens : 256);
    std::string last_problem;
    for (int attempt = 0;; ++attempt) {
        co_await acquire_slot();
        auto wait = std::max(request_rate_.take(1), token_rate_.take(estimate));
        if (wait.count() > 0) {
            asio::steady_timer t(client_->io(), wait);
            co_await t.async_wait(use_awaitable);
        }
        // Checked once the request may go: what the requests before it spent
        // is known by then (the overshoot is at most what is in flight).
        if (settings_.token_budget > 0 && tokens_spent_.load() >= settings_.token_budget) {
            release_slot();
            counters_.budget_refusals.fetch_add(1, std::memory_order_relaxed);
            out.budget_spent = true;
            out.error = "token budget spent (" + std::to_string(settings_.token_budget) + " tokens)";
            co_return out;
        }
        counters_.requests.fetch_add(1, std::memory_order_relaxed);
        auto t0 = Clock::now();
        HttpResponse res = co_await client_->post("/v1/chat/completions", headers, body);
        latency_.record(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
        release_slot();

        if (res.status == 200) {
            boost::system::error_code ec;
            bj::value v = bj::parse(res.body, ec);
            const bj::value *content = nullptr;
            if (!ec && v.is_object()) {
                const bj::value *choices = v.as_object().if_contains("choices");
                if (choices && choices->is_array() && !choices->as_array().empty()) {
                    const bj::value &c0 = choices->as_array()[0];
                    if (const bj::value *msg = c0.is_object() ? c0.as_object().if_contains("message") : nullptr)
                        content = msg->is_object() ? msg->as_object().if_contains("content") : nullptr;
                }
                if (const bj::value *usage = v.as_object().if_contains("usage"); usage && usage->is_object()) {
                    auto num = [&](const char *k) -> int64_t {
                        const bj::value *n = usage->as_object().if_contains(k);
                        return n && n->is_number() ? n->to_number<int64_t>() : 0;
                    };
                    int64_t p = num("prompt_tokens"), c = num("completion_tokens");
                    counters_.prompt_tokens.fetch_add(p, std::memory_order_relaxed);
                    counters_.completion_tokens.fetch_add(c, std::memory_order_relaxed);
                    tokens_spent_.fetch_add(p + c);
                    token_rate_.adjust(estimate - double(p + c));
                }
            }
            if (content && content->is_string()) {
                out.ok = true;
                out.content = std::string(content->get_string());
                co_return out;
            }
            counters_.failed_requests.fetch_add(1, std::memory_order_relaxed);
            out.error = "the server's reply has no choices[0].message.content: " + excerpt(res.body);
            co_return out;
        }
        const bool retryable = res.status == 0 || res.status == 408 || res.status == 429 || res.status >= 500;
        last_problem = res.status == 0 ? res.error
                                       : "HTTP " + std::to_string(res.status) + ": " + server_message(res.body);
        if (!retryable || attempt + 1 >= settings_.retry.max_attempts) {
            counters_.failed_requests.fetch_add(1, std::memory_order_relaxed);
            out.error = retryable ? "gave up after " + std::to_string(attempt + 1) + " attempts: " + last_problem
                                  : last_problem;
            co_return out;
        }
        counters_.retries.fetch_add(1, std::memory_order_relaxed);
        asio::steady_timer t(client_->io(), backoff(attempt, res.retry_after));
        co_await t.async_wait(use_awaitable);
    }
}

void ChatEngine::commit_cache() {
    if (!cache_) return;
    try {
        cache_->commit();
    } catch (const std::exception &e) {
        host_.warn(e.what());
    }
}

void ChatEngine::report_counters() {
    const Counters &c = counters_;
    const std::pair<const char *, const std::atomic<int64_t> *> counters[] = {
        {"requests", &c.requests},           {"retries", &c.retries},
        {"repairs", &c.repairs},             {"cache_hits", &c.cache_hits},
        {"deduplicated", &c.deduplicated},   {"prompt_tokens", &c.prompt_tokens},
        {"completion_tokens", &c.completion_tokens}, {"budget_refusals", &c.budget_refusals},
        {"failed_requests", &c.failed_requests}};
    static_assert(std::size(counters) == std::tuple_size_v<decltype(reported_)>);
    std::lock_guard lock(report_mutex_);
    for (size_t i = 0; i < std::size(counters); ++i) {
        const int64_t now = counters[i].second->load();
        if (now != reported_[i]) host_.counter(counters[i].first, now - reported_[i]);
        reported_[i] = now;
    }
}

void ChatEngine::report_latency() const {
    if (latency_.count() > 0) {
        host_.counter("latency_p50_ms", int64_t(latency_.percentile(0.50) + 0.5));
        host_.counter("latency_p90_ms", int64_t(latency_.percentile(0.90) + 0.5));
        host_.counter("latency_p99_ms", int64_t(latency_.percentile(0.99) + 0.5));
    }
}

} // namespace sluice::plugins::llm
