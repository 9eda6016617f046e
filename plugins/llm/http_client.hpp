// An asynchronous HTTP/1.1 client (Boost.Beast on one Asio thread): many
// requests in flight without a thread each, kept-alive connections reused,
// TLS with certificate and host name verification for https.
#pragma once

#include "endpoint.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ssl/context.hpp>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace sluice::plugins::llm {

struct HttpResponse {
    int status = 0;          // 0: no response (see error)
    std::string error;       // transport problem: refused, timed out, TLS ...
    bool timed_out = false;
    std::string body;
    std::string retry_after; // the Retry-After header, if any
};

struct TlsOptions {
    bool verify = true;
    std::string ca_file; // extra CA bundle (PEM), e.g. for a self-signed server
};

class HttpClient {
public:
    // Starts the client's own I/O thread. Throws std::runtime_error when the
    // TLS setup fails (a CA file that cannot be read).
    HttpClient(Endpoint endpoint, TlsOptions tls, std::chrono::milliseconds timeout);
    ~HttpClient(); // stop(), then requests still running are dropped
    // Stops the I/O thread and waits for it; nothing runs on io() afterwards.
    void stop();
    HttpClient(const HttpClient &) = delete;
    HttpClient &operator=(const HttpClient &) = delete;

    using Headers = std::vector<std::pair<std::string, std::string>>;

    // [io thread] POSTs `body` to path_prefix + `target`. Never throws:
    // problems come back in the response.
    boost::asio::awaitable<HttpResponse> post(std::string target, Headers headers, std::string body);

    boost::asio::io_context &io() { return io_; }
    const Endpoint &endpoint() const { return endpoint_; }

private:
    struct Connection;
    boost::asio::awaitable<std::unique_ptr<Connection>> connect();
    boost::asio::awaitable<HttpResponse> exchange(Connection &c, const std::string &target, const Headers &headers,
                                                  const std::string &body, bool &keep);

    Endpoint endpoint_;
    std::chrono::milliseconds timeout_;
    boost::asio::io_context io_;
    boost::asio::ssl::context ssl_;
    std::vector<std::unique_ptr<Connection>> idle_; // io thread only
    std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> work_;
    std::thread thread_;
};

} // namespace sluice::plugins::llm
