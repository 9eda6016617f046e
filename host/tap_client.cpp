#include "tap_client.hpp"

#include "admin_server.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/write.hpp>

#include <cstdlib>
#include <istream>
#include <ostream>

namespace sluice {

namespace asio = boost::asio;
using asio::ip::tcp;

namespace {

std::string url_encode(const std::string &s) {
    static const char *hex = "0123456789ABCDEF";
    std::string out;
    for (unsigned char c : s) {
        if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') out += char(c);
        else out += {'%', hex[c >> 4], hex[c & 15]};
    }
    return out;
}

} // namespace

int run_tap(const std::string &address, const std::string &stage_output, uint64_t limit, std::ostream &out,
            std::ostream &err) {
    std::string problem;
    auto where = parse_admin_address(address, problem);
    if (!where || where->port == 0) {
        err << "sluice tap: " << (where ? "ADDR needs a port" : problem) << "\n";
        return 2;
    }
    std::string stage = stage_output, output;
    if (size_t dot = stage_output.find('.'); dot != std::string::npos) {
        stage = stage_output.substr(0, dot);
        output = stage_output.substr(dot + 1);
    }
    try {
        asio::io_context io;
        tcp::socket socket(io);
        asio::connect(socket, tcp::resolver(io).resolve(where->address, std::to_string(where->port)));
        std::string request = "GET /tap?stage=" + url_encode(stage) + (output.empty() ? "" : "&output=" + url_encode(output)) +
                              (limit ? "&limit=" + std::to_string(limit) : "") + " HTTP/1.1\r\nHost: " + where->address +
                              "\r\nConnection: close\r\n";
        if (const char *token = std::getenv("SLUICE_ADMIN_TOKEN"); token && *token)
            request += "Authorization: Bearer " + std::string(token) + "\r\n";
        request += "\r\n";
        asio::write(socket, asio::buffer(request));
        asio::streambuf buf;
        asio::read_until(socket, buf, "\r\n\r\n");
        std::istream head(&buf);
        std::string version, status_line;
        int status = 0;
        head >> version >> status;
        std::getline(head, status_line);
        for (std::string line; std::getline(head, line) && line != "\r";) {}
        boost::system::error_code ec;
        if (status != 200) {
            asio::read(socket, buf, ec); // the error body, to the end
            std::string body((std::istreambuf_iterator<char>(&buf)), {});
            while (!body.empty() && (body.back() == '\n' || body.back() == '\r')) body.pop_back();
            err << "sluice tap: " << address << " answered " << status << ": " << body << "\n";
            return 1;
        }
        // Lines as they come, until the server closes the stream.
        for (;;) {
            if (buf.size()) {
                out << &buf;
                out.flush();
            }
            asio::read(socket, buf, asio::transfer_at_least(1), ec);
            if (ec) break;
        }
        if (buf.size()) out << &buf;
        out.flush();
        return 0;
    } catch (const std::exception &e) {
        err << "sluice tap: cannot reach the admin endpoint at " << address << ": " << e.what() << "\n";
        return 1;
    }
}

} // namespace sluice
