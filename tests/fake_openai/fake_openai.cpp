// A scripted OpenAI-compatible chat-completions server for tests and the
// benchmark: a real HTTP (or HTTPS) server on loopback, no model behind it.
//
//   fake_openai [--port N] [--latency-ms N] [--retry-after S]
//               [--tls-cert FILE --tls-key FILE]
//
// Prints "listening on PORT" once ready. POST /v1/chat/completions answers
// with a JSON object built from the request's response_format schema (each
// string property "fake-<hash of the prompt>", numbers the prompt's length,
// booleans true, arrays empty; a top-level "results" array gets one item per
// "index": N found in the prompt, for micro-batches). Markers anywhere in
// the conversation script the reply:
//   [[fake:429]] [[fake:500]]      that status (429 with Retry-After)
//   [[fake:429-once]] [[fake:500-once]]  that status the first time this
//                                  prompt is seen, then a normal answer
//   [[fake:malformed]]             content that is not JSON
//   [[fake:violate]]               JSON that breaks the schema (every time)
//   [[fake:violate-once]]          breaks it unless the conversation already
//                                  has a repair request in it
//   [[fake:slow=MS]]               answers after MS ms more
// POST /hook... is a webhook receiver (?status=N, ?fail_first=K).
// GET /stats gives {"requests", "max_in_flight", "in_flight", "authorization"
// (distinct Authorization headers), "prompts" (distinct)}; POST /reset
// clears them.
#include <Poco/Net/Context.h>
#include <Poco/Net/HTTPRequestHandler.h>
#include <Poco/Net/HTTPRequestHandlerFactory.h>
#include <Poco/Net/HTTPServer.h>
#include <Poco/Net/HTTPServerParams.h>
#include <Poco/Net/HTTPServerRequest.h>
#include <Poco/Net/HTTPServerResponse.h>
#include <Poco/Net/SecureServerSocket.h>
#include <Poco/Net/ServerSocket.h>
#include <Poco/ThreadPool.h>

#include <boost/json.hpp>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <iostream>
#include <map>
#include <mutex>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <thread>

namespace bj = boost::json;
using Poco::Net::HTTPResponse;

namespace {

struct Options {
    int latency_ms = 0;
    int retry_after = 1;
};

struct Stats {
    std::mutex mutex;
    uint64_t requests = 0;
    int in_flight = 0, max_in_flight = 0;
    std::set<std::string> authorization, prompts;
    std::map<std::string, int> seen; // prompt -> times
    // Webhook side (POST /hook...): requests, records received, per-URI count.
    uint64_t hook_requests = 0, hook_records = 0;
    std::set<std::string> hook_content_types;
    std::map<std::string, int> hook_seen;
};

Options options;
Stats stats;

uint64_t fnv(const std::string &s) {
    uint64_t h = 1469598103934665603ull;
    for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
    return h;
}

bj::value from_schema(const bj::value &schema, const std::string &prompt, bool violate) {
    const bj::object *o = schema.if_object();
    std::string type = o && o->contains("type") && o->at("type").is_string() ? std::string(o->at("type").as_string()) : "object";
    if (violate) {
        // The wrong type for every leaf.
        if (type == "string") return 12345;
        if (type != "object") return bj::value("not-a-" + type);
    }
    if (type == "string") {
        if (o && o->contains("enum")) return o->at("enum").as_array().at(0);
        return bj::value("fake-" + std::to_string(fnv(prompt) % 100000));
    }
    if (type == "integer" || type == "number") return int64_t(prompt.size());
    if (type == "boolean") return true;
    if (type == "array") return bj::array{};
    bj::object out;
    if (o && o->contains("properties")) {
        for (const auto &kv : o->at("properties").as_object()) {
            if (kv.key() == "results" && kv.value().is_object() && kv.value().as_object().contains("items")) {
                // One item per record of a micro-batch.
                bj::array items;
                static const std::regex index_re("\"index\"\\s*:\\s*(\\d+)");
                for (std::sregex_iterator it(prompt.begin(), prompt.end(), index_re), end; it != end; ++it) {
                    bj::value item = from_schema(kv.value().at("items"), prompt + (*it)[1].str(), violate);
                    item.as_object()["index"] = std::stoll((*it)[1].str());
                    items.push_back(std::move(item));
                }
                out["results"] = std::move(items);
                continue;
            }
            if (kv.key() == "index") continue;
            out[kv.key()] = from_schema(kv.value(), prompt + std::string(kv.key()), violate);
        }
    }
    return out;
}

void send_json(HTTPResponse::HTTPStatus status, Poco::Net::HTTPServerResponse &res, const bj::value &body) {
    std::string text = bj::serialize(body);
    res.setStatus(status);
    res.setContentType("application/json");
    res.setContentLength(std::streamsize(text.size()));
    res.send() << text;
}

class ChatHandler : public Poco::Net::HTTPRequestHandler {
public:
    void handleRequest(Poco::Net::HTTPServerRequest &req, Poco::Net::HTTPServerResponse &res) override {
        if (req.getURI() == "/stats") {
            std::lock_guard lock(stats.mutex);
            bj::array auth(stats.authorization.begin(), stats.authorization.end());
            send_json(HTTPResponse::HTTP_OK, res,
                      bj::object{{"requests", stats.requests},
                                 {"max_in_flight", stats.max_in_flight},
                                 {"in_flight", stats.in_flight},
                                 {"authorization", std::move(auth)},
                                 {"prompts", stats.prompts.size()},
                                 {"hook_requests", stats.hook_requests},
                                 {"hook_records", stats.hook_records},
                                 {"hook_content_types", bj::array(stats.hook_content_types.begin(),
                                                                  stats.hook_content_types.end())}});
            return;
        }
        if (req.getURI() == "/reset") {
            std::lock_guard lock(stats.mutex);
            stats.requests = 0;
            stats.max_in_flight = stats.in_flight;
            stats.authorization.clear();
            stats.prompts.clear();
            stats.seen.clear();
            stats.hook_requests = stats.hook_records = 0;
            stats.hook_content_types.clear();
            stats.hook_seen.clear();
            send_json(HTTPResponse::HTTP_OK, res, bj::object{});
            return;
        }
        if (req.getURI().rfind("/hook", 0) == 0 && req.getMethod() == "POST") {
            // A webhook receiver: ?status=N answers N always; ?fail_first=K
            // answers 503 (Retry-After: 0) to the first K requests to this URI.
            std::stringstream in;
            in << req.stream().rdbuf();
            std::string uri = req.getURI(), body = in.str();
            int status = 200, times;
            {
                std::lock_guard lock(stats.mutex);
                times = ++stats.hook_seen[uri];
            }
            std::smatch q;
            static const std::regex status_re("status=(\\d+)"), fail_re("fail_first=(\\d+)");
            if (std::regex_search(uri, q, status_re)) status = std::stoi(q[1].str());
            else if (std::regex_search(uri, q, fail_re) && times <= std::stoi(q[1].str())) status = 503;
            if (status == 503) res.set("Retry-After", "0");
            if (status >= 200 && status < 300) {
                uint64_t n = 0;
                boost::system::error_code jec;
                bj::value arr = body.size() && body[0] == '[' ? bj::parse(body, jec) : bj::value();
                if (arr.is_array()) n = arr.as_array().size();
                else
                    for (char c : body) n += c == '\n';
                std::lock_guard lock(stats.mutex);
                ++stats.hook_requests;
                stats.hook_records += n;
                stats.hook_content_types.insert(req.getContentType());
                if (req.has("Authorization")) stats.authorization.insert(req.get("Authorization"));
            }
            send_json(HTTPResponse::HTTPStatus(status), res, bj::object{{"status", status}});
            return;
        }
        if (req.getURI() != "/v1/chat/completions" || req.getMethod() != "POST") {
            send_json(HTTPResponse::HTTP_NOT_FOUND, res, bj::object{{"error", "not found"}});
            return;
        }
        std::stringstream body;
        body << req.stream().rdbuf();
        struct InFlight {
            InFlight() {
                std::lock_guard lock(stats.mutex);
                ++stats.requests;
                stats.max_in_flight = std::max(stats.max_in_flight, ++stats.in_flight);
            }
            ~InFlight() {
                std::lock_guard lock(stats.mutex);
                --stats.in_flight;
            }
        } counted;
        boost::system::error_code ec;
        bj::value request = bj::parse(body.str(), ec);
        if (ec || !request.is_object() || !request.as_object().contains("messages")) {
            send_json(HTTPResponse::HTTP_BAD_REQUEST, res, bj::object{{"error", "bad request"}});
            return;
        }
        const bj::array &messages = request.at("messages").as_array();
        std::string prompt, conversation;
        bool repairing = false;
        for (const auto &m : messages) {
            std::string content(m.at("content").as_string());
            conversation += content + "\n";
            if (m.at("role").as_string() == "user") prompt = content;
            if (m.at("role").as_string() == "assistant") repairing = true;
        }
        int times;
        {
            std::lock_guard lock(stats.mutex);
            if (req.has("Authorization")) stats.authorization.insert(req.get("Authorization"));
            stats.prompts.insert(conversation);
            times = ++stats.seen[conversation];
        }
        int delay = options.latency_ms;
        static const std::regex slow_re("\\[\\[fake:slow=(\\d+)\\]\\]");
        std::smatch m;
        if (std::regex_search(conversation, m, slow_re)) delay += std::stoi(m[1].str());
        if (delay > 0) std::this_thread::sleep_for(std::chrono::milliseconds(delay));

        // Markers count anywhere in the conversation (a repair request does
        // not repeat them).
        auto has = [&](const char *marker) { return conversation.find(marker) != std::string::npos; };
        if (has("[[fake:429]]") || (has("[[fake:429-once]]") && times == 1)) {
            res.set("Retry-After", std::to_string(options.retry_after));
            send_json(HTTPResponse::HTTP_TOO_MANY_REQUESTS, res, bj::object{{"error", {{"message", "rate limited"}}}});
            return;
        }
        if (has("[[fake:500]]") || (has("[[fake:500-once]]") && times == 1)) {
            send_json(HTTPResponse::HTTP_INTERNAL_SERVER_ERROR, res, bj::object{{"error", {{"message", "boom"}}}});
            return;
        }
        std::string content;
        if (has("[[fake:malformed]]")) {
            content = "Sure! Here is your answer: {not json";
        } else {
            bj::value schema = bj::object{{"type", "object"}, {"properties", {{"answer", {{"type", "string"}}}}}};
            if (const bj::value *rf = request.as_object().if_contains("response_format"))
                if (const bj::value *js = rf->as_object().if_contains("json_schema")) schema = js->at("schema");
            bool violate = has("[[fake:violate]]") || (has("[[fake:violate-once]]") && !repairing);
            content = bj::serialize(from_schema(schema, conversation, violate));
        }
        int64_t prompt_tokens = int64_t(conversation.size() / 4 + 1), completion_tokens = int64_t(content.size() / 4 + 1);
        send_json(HTTPResponse::HTTP_OK, res,
                  bj::object{{"id", "chatcmpl-fake"},
                             {"object", "chat.completion"},
                             {"model", request.at("model")},
                             {"choices", bj::array{bj::object{{"index", 0},
                                                              {"message", {{"role", "assistant"}, {"content", content}}},
                                                              {"finish_reason", "stop"}}}},
                             {"usage", {{"prompt_tokens", prompt_tokens},
                                        {"completion_tokens", completion_tokens},
                                        {"total_tokens", prompt_tokens + completion_tokens}}}});
    }
};

class Factory : public Poco::Net::HTTPRequestHandlerFactory {
public:
    Poco::Net::HTTPRequestHandler *createRequestHandler(const Poco::Net::HTTPServerRequest &) override {
        return new ChatHandler;
    }
};

} // namespace

const char *kHelp = R"(usage: fake_openai [--port N] [--latency-ms N] [--retry-after S]
                   [--tls-cert FILE --tls-key FILE]

An OpenAI-compatible chat-completions server on 127.0.0.1 with no model
behind it, for tests, benchmarks and running the LLM examples offline:
  build/release/bin/fake_openai --port 11434 &      # where tickets_llm looks
  build/release/bin/sluice run pipelines/tickets_llm.json
It prints "listening on PORT" once ready and stops on SIGINT or SIGTERM.
POST /v1/chat/completions answers with JSON built from the request's
response_format schema (strings "fake-<hash of the prompt>", numbers the
prompt's length); markers in a prompt script failures: [[fake:429]],
[[fake:500]], [[fake:malformed]], [[fake:violate]], [[fake:slow=MS]] (see the
source for all). GET /stats counts the requests.

options:
  --port N          port to listen on (default 0: any free one)
  --latency-ms N    answer each request after N ms
  --retry-after S   the Retry-After of a scripted 429
  --tls-cert FILE   serve HTTPS with this certificate (PEM) ...
  --tls-key FILE    ... and this key
)";

int main(int argc, char **argv) {
    int port = 0;
    std::string cert, key;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        auto next = [&]() -> std::string {
            if (i + 1 >= argc) {
                std::cerr << "fake_openai: " << a << " needs a value\n";
                std::exit(2);
            }
            return argv[++i];
        };
        if (a == "-h" || a == "--help") {
            std::cout << kHelp;
            return 0;
        }
        if (a == "--port") port = std::stoi(next());
        else if (a == "--latency-ms") options.latency_ms = std::stoi(next());
        else if (a == "--retry-after") options.retry_after = std::stoi(next());
        else if (a == "--tls-cert") cert = next();
        else if (a == "--tls-key") key = next();
        else {
            std::cerr << "fake_openai: unknown option " << a << " (try fake_openai --help)\n";
            return 2;
        }
    }
    Poco::Net::SocketAddress address("127.0.0.1", Poco::UInt16(port));
    std::unique_ptr<Poco::Net::ServerSocket> socket;
    if (!cert.empty()) {
        Poco::Net::Context::Ptr context = new Poco::Net::Context(Poco::Net::Context::TLS_SERVER_USE, key, cert, "",
                                                                 Poco::Net::Context::VERIFY_NONE);
        socket = std::make_unique<Poco::Net::SecureServerSocket>(address, 256, context);
    } else {
        socket = std::make_unique<Poco::Net::ServerSocket>(address, 256);
    }
    auto *params = new Poco::Net::HTTPServerParams;
    params->setMaxThreads(512);
    params->setMaxQueued(1024);
    params->setKeepAlive(true);
    Poco::ThreadPool pool(16, 512);
    Poco::Net::HTTPServer server(new Factory, pool, *socket, params);
    server.start();
    std::cout << "listening on " << socket->address().port() << std::endl;
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, nullptr);
    int sig = 0;
    sigwait(&set, &sig);
    server.stopAll(true);
    return 0;
}
