// The http ingest's server: asynchronous (Boost.Beast on Asio, coroutines),
// so a connection costs a socket and a little memory, never a thread. Idle,
// slow and half-open clients cannot starve the others: the request head must
// arrive within read_timeout_ms (from the connection's start or the end of
// the previous answer: slowloris clients are cut off), the body within
// body_timeout_ms, a connection serves at most max_requests_per_connection
// requests, and past max_connections new ones get 503 at once. A request
// waiting for its records' delivery waits on a timer, not on a thread.
#pragma once

#include "answer_log.hpp"
#include "ingest_buffer.hpp"
#include "ingest_request.hpp"

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace boost::asio {
class io_context;
namespace ssl {
class context;
}
} // namespace boost::asio

namespace sluice::plugins::http {

struct ServerLimits {
    int io_threads = 2;
    size_t max_connections = 1024;
    size_t max_requests_per_connection = 1000;
    std::chrono::milliseconds read_timeout{10000};
    std::chrono::milliseconds body_timeout{60000};
};

class IngestServer {
public:
    // Listens on address:port (0: any free port) at once; throws
    // std::runtime_error naming the address. `tls`: null for plain HTTP.
    IngestServer(const std::string &address, int port, std::shared_ptr<boost::asio::ssl::context> tls,
                 std::shared_ptr<IngestBuffer> buffer, const IngestSettings &settings, ServerLimits limits,
                 std::shared_ptr<AnswerLog> answers);
    ~IngestServer(); // stop()
    IngestServer(const IngestServer &) = delete;
    IngestServer &operator=(const IngestServer &) = delete;

    int port() const { return port_; }
    // Stops accepting; requests being answered get up to `grace` to finish
    // (those waiting for delivery hear 503 once the buffer gives up); then
    // every connection is closed.
    void stop(std::chrono::milliseconds grace = std::chrono::seconds(5));

    struct Impl;

private:
    std::shared_ptr<Impl> impl_; // outlives the io_context and the coroutines in it
    std::unique_ptr<boost::asio::io_context> ioc_;
    std::vector<std::thread> threads_;
    int port_ = 0;
    bool stopped_ = false;
};

} // namespace sluice::plugins::http
