// The admin endpoint of a running pipeline (off unless --admin or the
// manifest's "admin" asks for it; loopback unless configured; an optional
// bearer token):
//   GET /         the status page (status_page.hpp): the graph and its
//                 figures, live, in a browser; served without the token,
//                 which the page asks for to read /status
//   GET /health   200 while the process is alive
//   GET /ready    200 when every stage has started and none is stuck or
//                 restarting in a loop, else 503 with the reasons
//   GET /status   the run report so far, as JSON
//   GET /metrics  Prometheus text format (prometheus_metrics.hpp)
//   GET /tap?stage=ID[&output=NAME][&limit=N]
//                 records sent on a stage's output, as NDJSON, live, until
//                 N records, the run's end or the client leaves; sampled:
//                 what the reader cannot keep up with is dropped, never
//                 waited for
//   POST /reload  reads the manifest again and applies it (Pipeline::reload):
//                 200 with what changed, 409 with why it was refused
// One thread serves it (Boost.Beast on Asio coroutines), apart from the
// pipeline's; every request but a tap is answered and the connection closed.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>

namespace boost::asio {
class io_context;
}

namespace sluice {

class Pipeline;
struct ReloadOutcome;

struct AdminSettings {
    std::string address = "127.0.0.1";
    int port = 0;      // 0: any free port (logged at warn)
    std::string token; // "" for none; else "Authorization: Bearer <token>"
    // What POST /reload does; none: 404 (a dry run has nothing to reload).
    std::function<ReloadOutcome()> reload;
};

// "ADDR:PORT", ":PORT" or "PORT" (address 127.0.0.1); nullopt and `error`
// set when it is not one.
std::optional<AdminSettings> parse_admin_address(const std::string &text, std::string &error);

class AdminServer {
public:
    // Listens at once; throws std::runtime_error naming the address.
    AdminServer(const AdminSettings &settings, Pipeline &pipeline);
    ~AdminServer(); // stop()
    AdminServer(const AdminServer &) = delete;
    AdminServer &operator=(const AdminServer &) = delete;

    int port() const { return port_; }
    // Ends taps and closes every connection.
    void stop();

    struct Impl;

private:
    std::shared_ptr<Impl> impl_;
    std::unique_ptr<boost::asio::io_context> ioc_;
    std::thread thread_;
    int port_ = 0;
};

} // namespace sluice
