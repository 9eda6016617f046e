#include "http_client.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

namespace sluice::plugins::llm {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using asio::use_awaitable;

namespace {
constexpr size_t kMaxResponseBytes = 64u << 20;
constexpr size_t kMaxIdleConnections = 256;

bool is_stale_connection(const boost::system::error_code &ec) {
    return ec == http::error::end_of_stream || ec == asio::error::eof || ec == asio::error::connection_reset ||
           ec == asio::error::broken_pipe || ec == asio::ssl::error::stream_truncated;
}
} // namespace

struct HttpClient::Connection {
    std::unique_ptr<beast::tcp_stream> plain;
    std::unique_ptr<beast::ssl_stream<beast::tcp_stream>> secure;
    beast::flat_buffer buffer;

    beast::tcp_stream &lowest() { return secure ? beast::get_lowest_layer(*secure) : *plain; }
};

HttpClient::HttpClient(Endpoint endpoint, TlsOptions tls, std::chrono::milliseconds timeout)
    : endpoint_(std::move(endpoint)), timeout_(timeout), ssl_(asio::ssl::context::tls_client) {
    if (endpoint_.tls) {
        if (tls.verify) {
            ssl_.set_default_verify_paths();
            if (!tls.ca_file.empty()) {
                boost::system::error_code ec;
                ssl_.load_verify_file(tls.ca_file, ec);
                if (ec) throw std::runtime_error("ca_file " + tls.ca_file + ": " + ec.message());
            }
            ssl_.set_verify_mode(asio::ssl::verify_peer);
        } else {
            ssl_.set_verify_mode(asio::ssl::verify_none);
        }
    }
    work_.emplace(io_.get_executor());
    thread_ = std::thread([this] { io_.run(); });
}

void HttpClient::stop() {
    work_.reset();
    io_.stop();
    if (thread_.joinable()) thread_.join();
}

HttpClient::~HttpClient() {
    stop();
    idle_.clear();
}

asio::awaitable<std::unique_ptr<HttpClient::Connection>> HttpClient::connect() {
    asio::ip::tcp::resolver resolver(io_);
    auto results = co_await resolver.async_resolve(endpoint_.host, endpoint_.port, use_awaitable);
    auto c = std::make_unique<Connection>();
    if (endpoint_.tls) {
        c->secure = std::make_unique<beast::ssl_stream<beast::tcp_stream>>(io_, ssl_);
        // SNI, and the certificate must name the host.
        if (!SSL_set_tlsext_host_name(c->secure->native_handle(), endpoint_.host.c_str()))
            throw boost::system::system_error(
                boost::system::error_code(int(::ERR_get_error()), asio::error::get_ssl_category()));
        c->secure->set_verify_callback(asio::ssl::host_name_verification(endpoint_.host));
        c->lowest().expires_after(timeout_);
        co_await c->lowest().async_connect(results, use_awaitable);
        c->lowest().expires_after(timeout_);
        co_await c->secure->async_handshake(asio::ssl::stream_base::client, use_awaitable);
    } else {
        c->plain = std::make_unique<beast::tcp_stream>(io_);
        c->lowest().expires_after(timeout_);
        co_await c->plain->async_connect(results, use_awaitable);
    }
    co_return c;
}

asio::awaitable<HttpResponse> HttpClient::exchange(Connection &c, const std::string &target, const Headers &headers,
                                                   const std::string &body, bool &keep) {
    http::request<http::string_body> req{http::verb::post, endpoint_.path_prefix + target, 11};
    req.set(http::field::host, endpoint_.host);
    req.set(http::field::user_agent, "sluice-llm/1");
    req.set(http::field::content_type, "application/json");
    req.set(http::field::accept, "application/json");
    for (const auto &[name, value] : headers) req.set(name, value);
    req.body() = body;
    req.keep_alive(true);
    req.prepare_payload();

    http::response_parser<http::string_body> parser;
    parser.body_limit(kMaxResponseBytes);
    c.lowest().expires_after(timeout_);
    if (c.secure) {
        co_await http::async_write(*c.secure, req, use_awaitable);
        co_await http::async_read(*c.secure, c.buffer, parser, use_awaitable);
    } else {
        co_await http::async_write(*c.plain, req, use_awaitable);
        co_await http::async_read(*c.plain, c.buffer, parser, use_awaitable);
    }
    auto &res = parser.get();
    HttpResponse out;
    out.status = int(res.result_int());
    out.body = std::move(res.body());
    if (auto it = res.find(http::field::retry_after); it != res.end()) out.retry_after = std::string(it->value());
    keep = res.keep_alive();
    co_return out;
}

asio::awaitable<HttpResponse> HttpClient::post(std::string target, Headers headers, std::string body) {
    HttpResponse failed;
    for (int attempt = 0; attempt < 2; ++attempt) {
        std::unique_ptr<Connection> c;
        bool reused = false;
        boost::system::error_code ec;
        if (!idle_.empty()) {
            c = std::move(idle_.back());
            idle_.pop_back();
            reused = true;
        } else {
            try {
                c = co_await connect();
            } catch (const boost::system::system_error &e) {
                ec = e.code();
            }
            if (!c) {
                failed.timed_out = ec == beast::error::timeout;
                failed.error = "cannot connect to " + endpoint_.host + ":" + endpoint_.port + ": " +
                               (failed.timed_out ? std::string("timed out") : ec.message());
                co_return failed;
            }
        }
        bool keep = false;
        HttpResponse r;
        try {
            r = co_await exchange(*c, target, headers, body, keep);
        } catch (const boost::system::system_error &e) {
            ec = e.code();
        }
        if (!ec) {
            if (keep && idle_.size() < kMaxIdleConnections) idle_.push_back(std::move(c));
            co_return r;
        }
        // A kept-alive connection the server has closed meanwhile: once
        // more on a new one.
        if (reused && is_stale_connection(ec)) continue;
        failed.timed_out = ec == beast::error::timeout;
        failed.error = failed.timed_out ? "no answer within the timeout" : ec.message();
        co_return failed;
    }
    failed.error = "the connection was closed by the server";
    co_return failed;
}

} // namespace sluice::plugins::llm
