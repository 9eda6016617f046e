#include "headless_chromium.hpp"

#include <Poco/Base64Decoder.h>
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>

#include <cstdlib>
#include <fstream>
#include <iterator>
#include <regex>
#include <sstream>
#include <stdexcept>
#include <sys/socket.h>
#include <thread>
#include <unistd.h>

namespace sluice::test {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bj = boost::json;
using asio::ip::tcp;

struct HeadlessChromium::Connection {
    asio::io_context ioc;
    beast::websocket::stream<tcp::socket> ws{ioc};

    // One message from the browser; throws when none comes in 30 s.
    bj::object read() {
        beast::flat_buffer buffer;
        beast::error_code ec;
        ws.read(buffer, ec);
        if (ec) throw std::runtime_error("DevTools connection: " + ec.message());
        return bj::parse(beast::buffers_to_string(buffer.data())).as_object();
    }
};

std::string HeadlessChromium::binary() {
    if (const char *path = std::getenv("SLUICE_CHROMIUM"); path && *path) return ::access(path, X_OK) == 0 ? path : "";
    for (const char *path : {"/usr/bin/chromium", "/usr/bin/chromium-browser"})
        if (::access(path, X_OK) == 0) return path;
    return "";
}

HeadlessChromium::HeadlessChromium(int width, int height) {
    const std::string path = binary();
    if (path.empty()) throw std::runtime_error("Chromium is not installed");
    std::vector<std::string> argv{path,
                                  "--headless=new",
                                  "--disable-gpu",
                                  "--no-first-run",
                                  "--no-default-browser-check",
                                  "--disable-extensions",
                                  "--disable-background-networking",
                                  "--disable-component-update",
                                  "--disable-sync",
                                  "--hide-scrollbars",
                                  "--mute-audio",
                                  "--remote-debugging-address=127.0.0.1",
                                  "--remote-debugging-port=0",
                                  "--user-data-dir=" + profile_.path(),
                                  "about:blank"};
    // Chromium's sandbox refuses to run as root (CI runs as root).
    if (::geteuid() == 0) argv.insert(argv.begin() + 1, "--no-sandbox");
    process_ = std::make_unique<ChildProcess>(argv);
    const std::string marker = "DevTools listening on ";
    if (!process_->wait_for_err(marker, std::chrono::seconds(60)))
        throw std::runtime_error("Chromium did not open its DevTools port:\n" + process_->err_so_far());
    std::smatch m;
    const std::string err = process_->err_so_far();
    if (!std::regex_search(err, m, std::regex(R"(ws://([0-9.]+):([0-9]+)(/devtools/browser/[^\s]+))")))
        throw std::runtime_error("no DevTools address in Chromium's output:\n" + err);

    connection_ = std::make_unique<Connection>();
    tcp::endpoint endpoint(asio::ip::make_address(m[1].str()), static_cast<unsigned short>(std::stoi(m[2].str())));
    connection_->ws.next_layer().connect(endpoint);
    timeval timeout{30, 0};
    ::setsockopt(connection_->ws.next_layer().native_handle(), SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    connection_->ws.read_message_max(64 << 20);
    connection_->ws.handshake(m[1].str() + ":" + m[2].str(), m[3].str());

    const std::string target(call("Target.createTarget", {{"url", "about:blank"}}).at("targetId").as_string());
    session_ = std::string(call("Target.attachToTarget", {{"targetId", target}, {"flatten", true}}).at("sessionId").as_string());
    for (const char *domain : {"Page.enable", "Runtime.enable", "Network.enable", "Log.enable"}) call(domain);
    resize(width, height, false);
}

HeadlessChromium::~HeadlessChromium() {
    if (connection_) {
        beast::error_code ignored;
        const std::string close = bj::serialize(bj::object{{"id", ++next_id_}, {"method", "Browser.close"}});
        connection_->ws.write(asio::buffer(close), ignored);
    }
    if (process_) process_->wait(std::chrono::seconds(15));
}

void HeadlessChromium::on_event(const bj::object &message) {
    const bj::value *method = message.if_contains("method");
    if (!method) return;
    const bj::object empty;
    const bj::object &params = message.contains("params") ? message.at("params").as_object() : empty;
    const std::string name(method->as_string());
    if (name == "Page.loadEventFired") {
        loaded_ = true;
    } else if (name == "Network.requestWillBeSent") {
        requests_.emplace_back(params.at("request").at("url").as_string());
    } else if (name == "Runtime.exceptionThrown") {
        const bj::object &details = params.at("exceptionDetails").as_object();
        const bj::value *exception = details.if_contains("exception");
        const bj::value *description = exception ? exception->as_object().if_contains("description") : nullptr;
        errors_.push_back("exception: " + std::string(description ? description->as_string() : details.at("text").as_string()));
    } else if (name == "Runtime.consoleAPICalled" && params.at("type").as_string() == "error") {
        std::string line = "console.error:";
        for (const auto &arg : params.at("args").as_array())
            line += " " + (arg.as_object().contains("value") ? bj::serialize(arg.at("value")) : std::string("?"));
        errors_.push_back(line);
    } else if (name == "Log.entryAdded" && params.at("entry").at("level").as_string() == "error") {
        const bj::object &entry = params.at("entry").as_object();
        errors_.push_back("log: " + std::string(entry.at("text").as_string()) +
                          (entry.contains("url") ? " (" + std::string(entry.at("url").as_string()) + ")" : ""));
    }
}

bj::object HeadlessChromium::call(const std::string &method, bj::object params) {
    const int64_t id = ++next_id_;
    bj::object message{{"id", id}, {"method", method}, {"params", std::move(params)}};
    if (!session_.empty()) message["sessionId"] = session_;
    connection_->ws.write(asio::buffer(bj::serialize(message)));
    for (;;) {
        bj::object reply = connection_->read();
        const bj::value *reply_id = reply.if_contains("id");
        if (!reply_id) {
            on_event(reply);
            continue;
        }
        if (reply_id->to_number<int64_t>() != id) continue;
        if (const bj::value *error = reply.if_contains("error"))
            throw std::runtime_error(method + ": " + bj::serialize(*error));
        return reply.contains("result") ? reply.at("result").as_object() : bj::object{};
    }
}

void HeadlessChromium::navigate(const std::string &url) {
    loaded_ = false;
    bj::object result = call("Page.navigate", {{"url", url}});
    if (const bj::value *error = result.if_contains("errorText"))
        throw std::runtime_error("cannot load " + url + ": " + std::string(error->as_string()));
    while (!loaded_) on_event(connection_->read());
}

void HeadlessChromium::resize(int width, int height, bool mobile) {
    call("Emulation.setDeviceMetricsOverride",
         {{"width", width}, {"height", height}, {"deviceScaleFactor", 1}, {"mobile", mobile}});
    call("Emulation.setTouchEmulationEnabled", {{"enabled", mobile}});
}

bj::value HeadlessChromium::evaluate(const std::string &expression) {
    bj::object result = call("Runtime.evaluate", {{"expression", expression}, {"returnByValue", true}, {"awaitPromise", true}});
    if (const bj::value *details = result.if_contains("exceptionDetails")) {
        const bj::value *exception = details->as_object().if_contains("exception");
        const bj::value *description = exception ? exception->as_object().if_contains("description") : nullptr;
        throw std::runtime_error("the page threw: " +
                                 (description ? std::string(description->as_string()) : bj::serialize(*details)));
    }
    const bj::object &value = result.at("result").as_object();
    return value.contains("value") ? value.at("value") : bj::value(nullptr);
}

bool HeadlessChromium::wait_until(const std::string &expression, std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        bj::value v = evaluate(expression);
        if (v.is_bool() && v.as_bool()) return true;
        if (std::chrono::steady_clock::now() > deadline) return false;
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
}

std::string HeadlessChromium::screenshot(const std::string &path) {
    bj::object shot = call("Page.captureScreenshot", {{"format", "png"}});
    std::istringstream encoded(std::string(shot.at("data").as_string()));
    Poco::Base64Decoder decoder(encoded);
    std::string png((std::istreambuf_iterator<char>(decoder)), std::istreambuf_iterator<char>());
    std::ofstream(path, std::ios::binary) << png;
    return png;
}

} // namespace sluice::test
