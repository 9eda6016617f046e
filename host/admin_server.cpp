#include "admin_server.hpp"

#include "pipeline.hpp"
#include "prometheus_metrics.hpp"
#include "secret_redactor.hpp"
#include "stage.hpp"
#include "status_page.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>

#include <sluice/secret_check.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>
#include <stdexcept>

namespace sluice {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
namespace bj = boost::json;
using asio::ip::tcp;
constexpr asio::as_tuple_t<asio::use_awaitable_t<>> kAwait;

namespace {

constexpr size_t kTapCapacity = 4096;       // lines a slow reader may have waiting
constexpr auto kTapPoll = std::chrono::milliseconds(50);

std::string query_value(std::string_view query, std::string_view key) {
    while (!query.empty()) {
        size_t amp = query.find('&');
        std::string_view part = query.substr(0, amp);
        if (part.substr(0, key.size()) == key && part.size() > key.size() && part[key.size()] == '=')
            return std::string(part.substr(key.size() + 1));
        if (amp == std::string_view::npos) break;
        query.remove_prefix(amp + 1);
    }
    return {};
}

std::string json_error(const std::string &message) { return bj::serialize(bj::object{{"error", message}}) + "\n"; }

} // namespace

std::optional<AdminSettings> parse_admin_address(const std::string &text, std::string &error) {
    AdminSettings s;
    std::string port = text;
    if (size_t colon = text.rfind(':'); colon != std::string::npos) {
        if (colon > 0) s.address = text.substr(0, colon);
        port = text.substr(colon + 1);
    }
    int p = -1;
    auto r = std::from_chars(port.data(), port.data() + port.size(), p);
    if (port.empty() || r.ec != std::errc() || r.ptr != port.data() + port.size() || p < 0 || p > 65535) {
        error = "expected ADDRESS:PORT (PORT 0 to 65535, 0 for any free port), got '" + text + "'";
        return std::nullopt;
    }
    s.port = p;
    return s;
}

struct AdminServer::Impl : std::enable_shared_from_this<AdminServer::Impl> {
    Pipeline *pipeline = nullptr;
    std::string token;
    AuthFailureThrottle throttle; // addresses that send wrong tokens
    std::function<ReloadOutcome()> reload;
    std::unique_ptr<tcp::acceptor> acceptor;
    std::atomic<bool> stopping{false};

    asio::awaitable<void> accept_loop() {
        for (;;) {
            auto [ec, socket] = co_await acceptor->async_accept(kAwait);
            if (ec) {
                if (stopping || ec == asio::error::operation_aborted) co_return;
                continue;
            }
            asio::co_spawn(socket.get_executor(), serve(beast::tcp_stream(std::move(socket))), asio::detached);
        }
    }

    struct Answer {
        bhttp::status status = bhttp::status::ok;
        std::string content_type = "application/json";
        std::string body;
        bool page = false; // the status page: its own security policy
        long retry_after_s = 0;
    };

    static asio::awaitable<void> reply(beast::tcp_stream &stream, unsigned version, Answer a) {
        bhttp::response<bhttp::string_body> res{a.status, version};
        res.set(bhttp::field::server, "sluice");
        res.set(bhttp::field::content_type, a.content_type);
        if (a.status == bhttp::status::unauthorized) res.set(bhttp::field::www_authenticate, "Bearer");
        if (a.retry_after_s > 0) res.set(bhttp::field::retry_after, std::to_string(a.retry_after_s));
        res.set("X-Content-Type-Options", "nosniff");
        res.set(bhttp::field::cache_control, "no-store");
        if (a.page) {
            // Only this origin's script, styles and /status; never framed.
            res.set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; "
                                               "connect-src 'self'; img-src 'self' data:; base-uri 'none'; "
                                               "form-action 'none'; frame-ancestors 'none'");
            res.set("Referrer-Policy", "no-referrer");
        }
        res.body() = std::move(a.body);
        res.keep_alive(false);
        res.prepare_payload();
        stream.expires_after(std::chrono::seconds(10));
        co_await bhttp::async_write(stream, res, kAwait);
        beast::error_code ignored;
        stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
    }

    // Every answer but a tap's.
    Answer answer(const bhttp::request<bhttp::string_body> &req, std::string_view path, const std::string &client) {
        // The page holds no data (it reads /status with the token the user
        // gives it): served to anyone who can reach the endpoint.
        if (const StatusPageAsset *asset = status_page_asset(path);
            asset && (req.method() == bhttp::verb::get || req.method() == bhttp::verb::head))
            return {bhttp::status::ok, std::string(asset->content_type), std::string(asset->body), true};
        if (!token.empty()) {
            // One answer whatever was wrong (no header, another scheme, a
            // wrong token); an address that keeps guessing is refused.
            if (throttle.blocked(client)) {
                Answer refused{bhttp::status::too_many_requests, "application/json",
                               json_error("too many requests without the right token from this address")};
                refused.retry_after_s = throttle.retry_after_s(client);
                return refused;
            }
            auto auth = req[bhttp::field::authorization];
            if (!secrets_equal(std::string_view(auth.data(), auth.size()), "Bearer " + token)) {
                throttle.failed(client);
                return {bhttp::status::unauthorized, "application/json",
                        json_error("this endpoint needs 'Authorization: Bearer <token>'")};
            }
            throttle.succeeded(client);
        }
        if (path == "/reload") {
            if (req.method() != bhttp::verb::post)
                return {bhttp::status::method_not_allowed, "application/json", json_error("use POST")};
            if (!reload)
                return {bhttp::status::not_found, "application/json", json_error("this run cannot be reloaded")};
            // On this thread: one reload at a time, the endpoint waits.
            ReloadOutcome outcome = reload();
            return {outcome.applied ? bhttp::status::ok : bhttp::status::conflict, "application/json",
                    redacted(bj::serialize(outcome.to_json())) + "\n"};
        }
        if (req.method() != bhttp::verb::get && req.method() != bhttp::verb::head)
            return {bhttp::status::method_not_allowed, "application/json", json_error("use GET")};
        if (path == "/health") return {bhttp::status::ok, "application/json", "{\"status\":\"alive\"}\n"};
        if (path == "/ready") {
            std::vector<std::string> why = pipeline->not_ready();
            bj::array reasons;
            for (auto &w : why) reasons.emplace_back(w);
            return {why.empty() ? bhttp::status::ok : bhttp::status::service_unavailable, "application/json",
                    bj::serialize(bj::object{{"ready", why.empty()}, {"reasons", std::move(reasons)}}) + "\n"};
        }
        if (path == "/status")
            return {bhttp::status::ok, "application/json", redacted(bj::serialize(pipeline->live_report())) + "\n"};
        if (path == "/metrics")
            return {bhttp::status::ok, "text/plain; version=0.0.4; charset=utf-8", redacted(prometheus_text(*pipeline))};
        return {bhttp::status::not_found, "application/json",
                json_error("no such path (try / for the status page, /health, /ready, /status, /metrics, /tap or POST /reload)")};
    }

    asio::awaitable<void> serve(beast::tcp_stream stream) {
        auto self = shared_from_this(); // lives as long as the connection
        beast::flat_buffer buffer;
        bhttp::request<bhttp::string_body> req;
        stream.expires_after(std::chrono::seconds(10));
        auto [ec, n] = co_await bhttp::async_read(stream, buffer, req, kAwait);
        if (ec) co_return;
        std::string target(req.target().data(), req.target().size());
        size_t q = target.find('?');
        std::string path = target.substr(0, q), query = q == std::string::npos ? std::string() : target.substr(q + 1);
        beast::error_code no_peer;
        const auto peer = stream.socket().remote_endpoint(no_peer);
        Answer a = answer(req, path, no_peer ? std::string() : peer.address().to_string());
        if (path == "/tap" && a.status == bhttp::status::not_found) co_await tap(stream, req.version(), query);
        else co_await reply(stream, req.version(), std::move(a));
    }

    asio::awaitable<void> tap(beast::tcp_stream &stream, unsigned version, std::string query) {
        const std::string stage_id = query_value(query, "stage"), output = query_value(query, "output");
        uint64_t limit = 0;
        if (std::string l = query_value(query, "limit"); !l.empty()) std::from_chars(l.data(), l.data() + l.size(), limit);
        Stage *stage = nullptr;
        std::string problem;
        size_t index = 0;
        // Looked up apart (no co_await while the lock is held): a reload may
        // be swapping a stage's plugin.
        [&] {
            auto reading = pipeline->read_lock();
            for (const auto &s : pipeline->stages())
                if (s->id() == stage_id) stage = s.get();
            if (!stage) {
                problem = "no stage '" + stage_id + "' in pipeline '" + pipeline->manifest().name + "'";
            } else if (stage->output_count() == 0 || stage->spec().kind == SLUICE_KIND_LOADER) {
                problem = "stage '" + stage_id + "' is a loader: it has no output (tap the stage that feeds it)";
            } else if (!output.empty()) {
                const auto &names = stage->plugin().output_names;
                auto it = std::find(names.begin(), names.end(), output);
                if (it == names.end()) problem = "stage '" + stage_id + "' has no output '" + output + "'";
                index = size_t(it - names.begin());
            }
        }();
        if (!problem.empty()) {
            // Built apart: GCC 12 destroys a temporary of a co_await
            // expression twice.
            Answer refusal{bhttp::status::not_found, "application/json", json_error(problem)};
            co_await reply(stream, version, std::move(refusal));
            co_return;
        }
        std::shared_ptr<TapSubscription> sub = stage->tap().subscribe(index, kTapCapacity);
        // The body runs until the connection closes: no length, no chunks.
        static const std::string head =
            "HTTP/1.1 200 OK\r\nServer: sluice\r\nContent-Type: application/x-ndjson\r\nConnection: close\r\n\r\n";
        stream.expires_never();
        auto [ec, n] = co_await asio::async_write(stream, asio::buffer(head), kAwait);
        uint64_t sent = 0;
        asio::steady_timer timer(stream.get_executor());
        while (!ec && !stopping && (limit == 0 || sent < limit)) {
            std::vector<std::string> lines = sub->take(256);
            if (lines.empty()) {
                if (pipeline->phase() == Pipeline::Phase::finished) break;
                timer.expires_after(kTapPoll);
                co_await timer.async_wait(kAwait);
                continue;
            }
            std::string chunk;
            for (auto &line : lines) {
                if (limit && sent >= limit) break;
                chunk += line;
                chunk += '\n';
                ++sent;
            }
            stream.expires_after(std::chrono::seconds(30)); // a reader that stops reading is let go
            std::tie(ec, n) = co_await asio::async_write(stream, asio::buffer(chunk), kAwait);
        }
        beast::error_code ignored;
        stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
    }
};

AdminServer::AdminServer(const AdminSettings &settings, Pipeline &pipeline)
    : impl_(std::make_shared<Impl>()), ioc_(std::make_unique<asio::io_context>(1)) {
    impl_->pipeline = &pipeline;
    impl_->token = settings.token;
    impl_->reload = settings.reload;
    try {
        tcp::endpoint ep(asio::ip::make_address(settings.address), static_cast<unsigned short>(settings.port));
        impl_->acceptor = std::make_unique<tcp::acceptor>(*ioc_, ep);
    } catch (const std::exception &e) {
        throw std::runtime_error("admin endpoint " + settings.address + ":" + std::to_string(settings.port) +
                                 ": cannot listen: " + e.what());
    }
    port_ = impl_->acceptor->local_endpoint().port();
    asio::co_spawn(*ioc_, impl_->accept_loop(), asio::detached);
    thread_ = std::thread([this] { ioc_->run(); });
}

AdminServer::~AdminServer() { stop(); }

void AdminServer::stop() {
    if (!thread_.joinable()) return;
    impl_->stopping = true;
    asio::post(*ioc_, [impl = impl_] {
        beast::error_code ignored;
        impl->acceptor->close(ignored);
    });
    // Open taps end with their connections, closed with the io_context: a
    // reader sees the end of the stream.
    ioc_->stop();
    thread_.join();
    // The acceptor belongs to the io_context, which goes first.
    impl_->acceptor.reset();
}

} // namespace sluice
