// Whether a TCP endpoint accepts connections, within a time limit: the
// preflight check of plugins that talk to a server (sluice.preflight/1).
// Connects and closes; sends nothing.
#pragma once

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <string>

namespace sluice::plugins {

// "" when host:port accepted a connection within `limit`, else why not.
inline std::string tcp_reachable(const std::string &host, const std::string &port, std::chrono::milliseconds limit) {
    namespace asio = boost::asio;
    asio::io_context io;
    asio::ip::tcp::resolver resolver(io);
    asio::ip::tcp::socket socket(io);
    asio::steady_timer timer(io);
    std::string problem = "no answer within " + std::to_string(limit.count()) + " ms";
    bool done = false;
    resolver.async_resolve(host, port, [&](const boost::system::error_code &ec, asio::ip::tcp::resolver::results_type r) {
        if (ec) {
            problem = "cannot resolve " + host + ": " + ec.message();
            done = true;
            timer.cancel();
            return;
        }
        asio::async_connect(socket, r, [&](const boost::system::error_code &ec2, const asio::ip::tcp::endpoint &) {
            problem = ec2 ? "cannot connect to " + host + ":" + port + ": " + ec2.message() : std::string();
            done = true;
            timer.cancel();
        });
    });
    timer.expires_after(limit);
    timer.async_wait([&](const boost::system::error_code &ec) {
        if (!ec && !done) {
            resolver.cancel();
            boost::system::error_code ignored;
            socket.close(ignored);
        }
    });
    io.run();
    return problem;
}

} // namespace sluice::plugins
