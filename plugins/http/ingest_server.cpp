#include "ingest_server.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include <stdexcept>

namespace sluice::plugins::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
using asio::ip::tcp;
using tuple_awaitable = asio::as_tuple_t<asio::use_awaitable_t<>>;
constexpr tuple_awaitable kAwait;

namespace {

// How much of an oversized body is read and thrown away after the 413 so
// that the client hears it instead of a reset; past it, or past the time,
// the connection is simply closed.
constexpr size_t kMaxDiscardBytes = 16u << 20;
constexpr std::chrono::seconds kDiscardTime{2};
constexpr size_t kMaxHeadBytes = 16 * 1024;

beast::tcp_stream &lowest(beast::tcp_stream &s) { return s; }
beast::tcp_stream &lowest(beast::ssl_stream<beast::tcp_stream> &s) { return beast::get_lowest_layer(s); }

bhttp::response<bhttp::string_body> to_response(const IngestAnswer &a, unsigned version, bool keep_alive) {
    bhttp::response<bhttp::string_body> res{bhttp::status(a.status), version};
    res.set(bhttp::field::server, "sluice");
    res.set(bhttp::field::content_type, "application/json");
    for (const auto &[k, v] : a.headers) res.set(k, v);
    res.body() = a.body;
    res.keep_alive(keep_alive && !a.close);
    res.prepare_payload();
    return res;
}

} // namespace

struct IngestServer::Impl : std::enable_shared_from_this<IngestServer::Impl> {
    asio::io_context *ioc = nullptr;
    std::unique_ptr<tcp::acceptor> acceptor;
    std::shared_ptr<asio::ssl::context> tls;
    std::shared_ptr<IngestBuffer> buffer;
    std::shared_ptr<AnswerLog> answers;
    IngestSettings settings;
    AuthFailureThrottle throttle; // addresses sending wrong tokens
    ServerLimits limits;
    std::atomic<size_t> connections{0}; // open
    std::atomic<size_t> busy{0};        // with a request being answered
    std::atomic<bool> stopping{false};

    asio::awaitable<void> accept_loop() {
        for (;;) {
            auto [ec, socket] = co_await acceptor->async_accept(asio::make_strand(*ioc), kAwait);
            if (ec) {
                if (stopping || ec == asio::error::operation_aborted) co_return;
                continue; // e.g. too many open files: try the next one
            }
            if (connections.load() >= limits.max_connections) {
                asio::co_spawn(socket.get_executor(), refuse(std::move(socket)), asio::detached);
                continue;
            }
            ++connections;
            auto self = shared_from_this();
            auto exec = socket.get_executor();
            if (tls)
                asio::co_spawn(exec, serve_tls(beast::ssl_stream<beast::tcp_stream>(std::move(socket), *tls)),
                               [self](std::exception_ptr) { --self->connections; });
            else
                asio::co_spawn(exec, serve(beast::tcp_stream(std::move(socket))),
                               [self](std::exception_ptr) { --self->connections; });
        }
    }

    // Past max_connections: 503 and close, without reading anything.
    asio::awaitable<void> refuse(tcp::socket socket) {
        static const std::string answer =
            "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nRetry-After: 1\r\nConnection: "
            "close\r\nContent-Length: 38\r\n\r\n{\"error\":\"too many open connections\"}";
        answers->answered(503, "too many open connections");
        beast::tcp_stream stream(std::move(socket));
        stream.expires_after(std::chrono::seconds(1));
        co_await asio::async_write(stream, asio::buffer(answer), kAwait);
        beast::error_code ignored;
        stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
    }

    asio::awaitable<void> serve_tls(beast::ssl_stream<beast::tcp_stream> stream) {
        lowest(stream).expires_after(limits.read_timeout);
        auto [ec] = co_await stream.async_handshake(asio::ssl::stream_base::server, kAwait);
        if (ec) co_return; // no certificate, a wrong one, or not TLS at all
        co_await serve(std::move(stream));
    }

    template <class Stream>
    asio::awaitable<void> serve(Stream stream) {
        beast::flat_buffer buffer;
        for (size_t served = 0; served < limits.max_requests_per_connection && !stopping; ++served) {
            bhttp::request_parser<bhttp::string_body> parser;
            parser.header_limit(kMaxHeadBytes);
            parser.body_limit(settings.max_body_bytes);
            // The whole head within the time, however slowly it trickles in.
            lowest(stream).expires_after(limits.read_timeout);
            auto [ec, n] = co_await bhttp::async_read_header(stream, buffer, parser, kAwait);
            if (ec == bhttp::error::body_limit) { // a Content-Length over max_body_bytes
                co_await answer(stream, too_large_answer(settings), parser.get().version(), false);
                co_await discard(stream, buffer);
                break;
            }
            if (ec) break; // closed, timed out, or not HTTP
            struct Busy {
                std::atomic<size_t> &n;
                explicit Busy(std::atomic<size_t> &b) : n(b) { ++n; }
                ~Busy() { --n; }
            } busy_now(busy);
            const auto &head = parser.get();
            const bool last = served + 1 >= limits.max_requests_per_connection;
            IngestHead h;
            h.method = std::string_view(head.method_string().data(), head.method_string().size());
            h.target = std::string_view(head.target().data(), head.target().size());
            auto auth = head[bhttp::field::authorization];
            h.authorization = std::string_view(auth.data(), auth.size());
            auto enc = head[bhttp::field::content_encoding];
            h.content_encoding = std::string_view(enc.data(), enc.size());
            if (auto length = parser.content_length()) h.content_length = *length;
            beast::error_code no_peer;
            const auto peer = lowest(stream).socket().remote_endpoint(no_peer);
            if (!no_peer) h.client = peer.address().to_string();
            if (std::optional<IngestAnswer> early = check_head(h, settings, &throttle)) {
                // Settled by the head: the body is not wanted, so the
                // connection closes after the answer (413: once what the
                // client still sends is read off, so it hears the 413).
                early->close = true;
                co_await answer(stream, *early, head.version(), false);
                if (early->status == 413) co_await discard(stream, buffer);
                break;
            }
            if (beast::iequals(head[bhttp::field::expect], "100-continue")) {
                bhttp::response<bhttp::empty_body> go{bhttp::status::continue_, head.version()};
                auto [wec, wn] = co_await bhttp::async_write(stream, go, kAwait);
                if (wec) break;
            }
            lowest(stream).expires_after(limits.body_timeout);
            auto [bec, bn] = co_await bhttp::async_read(stream, buffer, parser, kAwait);
            if (bec == bhttp::error::body_limit) {
                co_await answer(stream, too_large_answer(settings), head.version(), false);
                co_await discard(stream, buffer);
                break;
            }
            if (bec) break;
            const unsigned version = parser.get().version();
            const bool keep_alive = parser.get().keep_alive() && !last;
            std::string encoding(enc);
            IngestAnswer a = take_body(encoding, std::move(parser.get().body()), *this->buffer, settings);
            if (a.wait_for > 0) a = co_await wait_delivered(a.wait_for, a.accepted);
            if (!co_await answer(stream, a, version, keep_alive) || !keep_alive || a.close) break;
        }
        beast::error_code ignored;
        lowest(stream).socket().shutdown(tcp::socket::shutdown_both, ignored);
    }

    template <class Stream>
    asio::awaitable<bool> answer(Stream &stream, const IngestAnswer &a, unsigned version, bool keep_alive) {
        answers->answered(a.status, a.body);
        auto res = to_response(a, version, keep_alive);
        lowest(stream).expires_after(limits.read_timeout);
        auto [ec, n] = co_await bhttp::async_write(stream, res, kAwait);
        co_return !ec;
    }

    template <class Stream>
    asio::awaitable<void> discard(Stream &stream, beast::flat_buffer &buffer) {
        buffer.consume(buffer.size());
        size_t discarded = 0;
        char scratch[65536];
        lowest(stream).expires_after(kDiscardTime);
        while (discarded < kMaxDiscardBytes) {
            auto [ec, n] = co_await stream.async_read_some(asio::buffer(scratch), kAwait);
            if (ec) break;
            discarded += n;
        }
    }

    // Waits, without a thread, until the request's records are delivered,
    // the pipeline gives up on them, or the client's patience runs out.
    asio::awaitable<IngestAnswer> wait_delivered(uint64_t last, size_t accepted) {
        auto exec = co_await asio::this_coro::executor;
        auto timer = std::make_shared<asio::steady_timer>(exec, settings.delivery_timeout);
        buffer->when_delivered(last, [timer, exec] { asio::post(exec, [timer] { timer->cancel(); }); });
        auto [ec] = co_await timer->async_wait(kAwait);
        if (buffer->is_delivered(last)) co_return delivered_answer(accepted);
        co_return undelivered_answer(!ec); // the timer ran out: 504; cancelled: the buffer gave up, 503
    }
};

IngestServer::IngestServer(const std::string &address, int port, std::shared_ptr<asio::ssl::context> tls,
                           std::shared_ptr<IngestBuffer> buffer, const IngestSettings &settings, ServerLimits limits,
                           std::shared_ptr<AnswerLog> answers)
    : impl_(std::make_shared<Impl>()), ioc_(std::make_unique<asio::io_context>()) {
    impl_->answers = std::move(answers);
    impl_->ioc = ioc_.get();
    impl_->acceptor = std::make_unique<tcp::acceptor>(*ioc_);
    impl_->tls = std::move(tls);
    impl_->buffer = std::move(buffer);
    impl_->settings = settings;
    impl_->limits = limits;
    beast::error_code ec;
    auto ip = asio::ip::make_address(address, ec);
    if (ec) throw std::runtime_error("'" + address + "' is not an IP address");
    tcp::endpoint where(ip, asio::ip::port_type(port));
    tcp::acceptor &a = *impl_->acceptor;
    a.open(where.protocol(), ec);
    if (!ec) a.set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) a.bind(where, ec);
    if (!ec) a.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) throw std::runtime_error(ec.message());
    port_ = a.local_endpoint().port();
    asio::co_spawn(*ioc_, impl_->accept_loop(), asio::detached);
    for (int i = 0; i < std::max(1, limits.io_threads); ++i) threads_.emplace_back([ioc = ioc_.get()] { ioc->run(); });
}

IngestServer::~IngestServer() {
    stop();
    // The coroutines still in the io_context (idle connections) go with it,
    // before the state they point to.
    impl_->acceptor.reset();
    ioc_.reset();
}

void IngestServer::stop(std::chrono::milliseconds grace) {
    if (stopped_) return;
    stopped_ = true;
    impl_->stopping = true;
    asio::post(*ioc_, [impl = impl_] {
        beast::error_code ignored;
        impl->acceptor->close(ignored);
    });
    // Requests being answered finish (waiting ones hear from the buffer).
    auto deadline = std::chrono::steady_clock::now() + grace;
    while (impl_->busy.load() > 0 && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    ioc_->stop();
    for (auto &t : threads_) t.join();
    threads_.clear();
}

} // namespace sluice::plugins::http
