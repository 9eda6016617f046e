#include "reload_client.hpp"

#include "admin_server.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <boost/json.hpp>

#include <cstdlib>
#include <ostream>

namespace sluice {

namespace asio = boost::asio;
namespace bj = boost::json;
using asio::ip::tcp;

int run_reload(const std::string &address, std::ostream &out, std::ostream &err) {
    std::string problem;
    auto where = parse_admin_address(address, problem);
    if (!where || where->port == 0) {
        err << "sluice reload: " << (where ? "ADDR needs a port" : problem) << "\n";
        return 2;
    }
    std::string response;
    try {
        asio::io_context io;
        tcp::socket socket(io);
        asio::connect(socket, tcp::resolver(io).resolve(where->address, std::to_string(where->port)));
        std::string request = "POST /reload HTTP/1.1\r\nHost: " + where->address +
                              "\r\nContent-Length: 0\r\nConnection: close\r\n";
        if (const char *token = std::getenv("SLUICE_ADMIN_TOKEN"); token && *token)
            request += "Authorization: Bearer " + std::string(token) + "\r\n";
        request += "\r\n";
        asio::write(socket, asio::buffer(request));
        boost::system::error_code ec;
        asio::read(socket, asio::dynamic_buffer(response), ec); // to the end: the server closes
    } catch (const std::exception &e) {
        err << "sluice reload: cannot reach " << where->address << ":" << where->port << ": " << e.what() << "\n";
        return 2;
    }
    const size_t body_at = response.find("\r\n\r\n");
    const int status = response.size() > 12 ? std::atoi(response.c_str() + 9) : 0;
    const std::string body = body_at == std::string::npos ? std::string() : response.substr(body_at + 4);
    boost::system::error_code ec;
    bj::value v = bj::parse(body, ec);
    if (ec || !v.is_object()) {
        err << "sluice reload: unexpected answer (HTTP " << status << ")\n";
        return 2;
    }
    const bj::object &o = v.as_object();
    if (const bj::value *e = o.if_contains("error"); e && e->is_string()) {
        err << "sluice reload: " << e->as_string().c_str() << " (HTTP " << status << ")\n";
        return 2;
    }
    auto lines = [&](const char *key, std::ostream &to, const char *prefix) {
        if (const bj::value *a = o.if_contains(key); a && a->is_array())
            for (const bj::value &line : a->as_array())
                if (line.is_string()) to << prefix << line.as_string().c_str() << "\n";
    };
    const bool applied = o.contains("applied") && o.at("applied").is_bool() && o.at("applied").as_bool();
    if (applied) {
        const bj::value *changes = o.if_contains("changes");
        if (!changes || !changes->is_array() || changes->as_array().empty()) out << "reloaded: no stage changed\n";
        else out << "reloaded:\n";
        lines("changes", out, "  ");
        lines("notes", out, "note: ");
        return 0;
    }
    err << "reload refused; the pipeline runs as it was:\n";
    lines("problems", err, "  ");
    lines("changes", out, "applied: ");
    return 1;
}

} // namespace sluice
