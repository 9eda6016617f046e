#include "fake_openai_server.hpp"

#include <Poco/Net/Context.h>
#include <Poco/Net/HTTPClientSession.h>
#include <Poco/Net/HTTPRequest.h>
#include <Poco/Net/HTTPResponse.h>
#include <Poco/Net/HTTPSClientSession.h>

#include <csignal>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace sluice::test {

namespace {

std::string get(int port, bool tls, const std::string &path) {
    std::unique_ptr<Poco::Net::HTTPClientSession> session;
    if (tls) {
        Poco::Net::Context::Ptr ctx =
            new Poco::Net::Context(Poco::Net::Context::TLS_CLIENT_USE, "", "", "", Poco::Net::Context::VERIFY_NONE);
        session = std::make_unique<Poco::Net::HTTPSClientSession>("127.0.0.1", Poco::UInt16(port), ctx);
    } else {
        session = std::make_unique<Poco::Net::HTTPClientSession>("127.0.0.1", Poco::UInt16(port));
    }
    Poco::Net::HTTPRequest req(Poco::Net::HTTPRequest::HTTP_GET, path, Poco::Net::HTTPMessage::HTTP_1_1);
    session->sendRequest(req);
    Poco::Net::HTTPResponse res;
    std::istream &in = session->receiveResponse(res);
    std::stringstream body;
    body << in.rdbuf();
    return body.str();
}

} // namespace

FakeOpenAI::FakeOpenAI(std::vector<std::string> args) {
    for (const auto &a : args) tls_ = tls_ || a == "--tls-cert";
    std::vector<std::string> argv{SLUICE_FAKE_OPENAI};
    argv.insert(argv.end(), args.begin(), args.end());
    process_ = std::make_unique<ChildProcess>(argv);
    for (int i = 0; i < 500; ++i) {
        std::string out = process_->out_so_far();
        if (auto pos = out.find("listening on "); pos != std::string::npos && out.find('\n', pos) != std::string::npos) {
            port_ = std::stoi(out.substr(pos + 13));
            return;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    throw std::runtime_error("fake_openai did not start: " + process_->err_so_far());
}

FakeOpenAI::~FakeOpenAI() {
    process_->signal(SIGTERM);
    process_->wait(std::chrono::seconds(10));
}

boost::json::object FakeOpenAI::stats() const { return boost::json::parse(get(port_, tls_, "/stats")).as_object(); }

void FakeOpenAI::reset() const { get(port_, tls_, "/reset"); }

} // namespace sluice::test
