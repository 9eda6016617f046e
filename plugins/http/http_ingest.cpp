#include "http_ingest.hpp"

#include <sluice/json.hpp>

#include <Poco/Net/HTTPRequestHandler.h>
#include <Poco/Net/HTTPRequestHandlerFactory.h>
#include <Poco/Net/HTTPServerParams.h>
#include <Poco/Net/HTTPServerRequest.h>
#include <Poco/Net/HTTPServerResponse.h>
#include <Poco/Net/SecureServerSocket.h>
#include <Poco/Net/ServerSocket.h>
#include <Poco/InflatingStream.h>
#include <Poco/String.h>
#include <Poco/ThreadPool.h>
#include <Poco/URI.h>

#include <charconv>
#include <cstdlib>
#include <optional>

namespace sluice::plugins::http {

namespace bj = boost::json;
using Poco::Net::HTTPResponse;

namespace {

void answer(Poco::Net::HTTPServerResponse &res, HTTPResponse::HTTPStatus status, const std::string &json) {
    res.setStatus(status);
    res.setContentType("application/json");
    res.setContentLength(std::streamsize(json.size()));
    res.send() << json;
}

std::string error_json(const std::string &message) {
    std::string out = "{\"error\":";
    json::append_string(out, message);
    return out + "}";
}

// The records of a body: a JSON array of objects, one object, or NDJSON.
// Returns the problem (naming the line or element), or "".
std::string parse_body(const std::string &body, std::vector<std::string> &records) {
    size_t first = body.find_first_not_of(" \t\r\n");
    if (first == std::string::npos) return "empty body";
    boost::system::error_code ec;
    if (body[first] == '[') {
        bj::value v = bj::parse(body, ec);
        if (ec) return "invalid JSON array (" + ec.message() + ")";
        size_t i = 0;
        for (const bj::value &e : v.as_array()) {
            if (!e.is_object()) return "element " + std::to_string(i) + ": expected a JSON object";
            records.push_back(bj::serialize(e));
            ++i;
        }
        return {};
    }
    size_t line_no = 0, pos = 0;
    while (pos < body.size()) {
        size_t nl = body.find('\n', pos);
        std::string_view line(body.data() + pos, (nl == std::string::npos ? body.size() : nl) - pos);
        pos = nl == std::string::npos ? body.size() : nl + 1;
        ++line_no;
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        if (line.find_first_not_of(" \t") == std::string_view::npos) continue;
        bj::value v = bj::parse(line, ec);
        if (ec) return "line " + std::to_string(line_no) + ": invalid JSON (" + ec.message() + ")";
        if (!v.is_object()) return "line " + std::to_string(line_no) + ": expected a JSON object";
        records.emplace_back(line);
    }
    return {};
}

// How much of an oversized body is read and thrown away so that the client
// hears the 413; past it, the connection is simply closed.
constexpr size_t kMaxDiscardBytes = 16u << 20;

class IngestHandler : public Poco::Net::HTTPRequestHandler {
public:
    IngestHandler(std::shared_ptr<IngestBuffer> buffer, const IngestSettings &s) : buffer_(std::move(buffer)), s_(s) {}

    void handleRequest(Poco::Net::HTTPServerRequest &req, Poco::Net::HTTPServerResponse &res) override {
        if (Poco::URI(req.getURI()).getPath() != s_.path) return answer(res, HTTPResponse::HTTP_NOT_FOUND, error_json("not found"));
        if (req.getMethod() != Poco::Net::HTTPRequest::HTTP_POST) {
            res.set("Allow", "POST");
            return answer(res, HTTPResponse::HTTP_METHOD_NOT_ALLOWED, error_json("use POST"));
        }
        if (!s_.token.empty() && req.get("Authorization", "") != "Bearer " + s_.token) {
            res.set("WWW-Authenticate", "Bearer");
            return answer(res, HTTPResponse::HTTP_UNAUTHORIZED, error_json("a valid bearer token is required"));
        }
        const std::string too_large = "the body is larger than " + std::to_string(s_.max_body_bytes) + " bytes";
        std::istream &in = req.stream();
        char chunk[65536];
        auto refuse_too_large = [&] {
            // Read (a bounded amount of) what the client is still sending:
            // closing on unread data resets the connection, and the client
            // would see that instead of the 413.
            size_t discarded = 0;
            while (discarded < kMaxDiscardBytes && (in.read(chunk, sizeof chunk) || in.gcount() > 0))
                discarded += size_t(in.gcount());
            res.setKeepAlive(false);
            answer(res, HTTPResponse::HTTP_REQUEST_ENTITY_TOO_LARGE, error_json(too_large));
        };
        if (req.hasContentLength() && req.getContentLength64() > Poco::Int64(s_.max_body_bytes)) return refuse_too_large();
        // Compressed bodies (what log shippers send) are inflated as they
        // are read; the size limit applies to the inflated bytes too, so a
        // small bomb cannot blow up memory.
        const std::string encoding = Poco::toLower(req.get("Content-Encoding", "identity"));
        std::optional<Poco::InflatingInputStream> inflated;
        if (encoding == "gzip" || encoding == "x-gzip") inflated.emplace(in, Poco::InflatingStreamBuf::STREAM_GZIP);
        else if (encoding == "deflate") inflated.emplace(in, Poco::InflatingStreamBuf::STREAM_ZLIB);
        else if (encoding != "identity")
            return answer(res, HTTPResponse::HTTP_UNSUPPORTED_MEDIA_TYPE,
                          error_json("unsupported Content-Encoding '" + encoding + "' (use gzip, deflate or none)"));
        // A corrupt stream must throw rather than look like the end of the body.
        if (inflated) inflated->exceptions(std::ios::badbit);
        std::istream &source = inflated ? static_cast<std::istream &>(*inflated) : in;
        std::string body;
        try {
            while (source.read(chunk, sizeof chunk) || source.gcount() > 0) {
                body.append(chunk, size_t(source.gcount()));
                if (body.size() > s_.max_body_bytes) return refuse_too_large();
            }
        } catch (const Poco::Exception &e) {
            if (!inflated) throw; // the connection, not the body
            return answer(res, HTTPResponse::HTTP_BAD_REQUEST,
                          error_json("the body is not valid " + encoding + ": " + e.displayText()));
        }
        std::vector<std::string> records;
        if (std::string problem = parse_body(body, records); !problem.empty())
            return answer(res, HTTPResponse::HTTP_BAD_REQUEST, error_json(problem)); // nothing of it is taken
        const size_t n = records.size();
        uint64_t last = 0;
        switch (buffer_->push_all(std::move(records), last)) {
        case IngestBuffer::Push::accepted:
            if (s_.wait_for_delivery) {
                switch (buffer_->wait_delivered(last, s_.delivery_timeout)) {
                case IngestBuffer::Wait::delivered: break;
                case IngestBuffer::Wait::timed_out:
                    return answer(res, HTTPResponse::HTTP_GATEWAY_TIMEOUT,
                                  error_json("accepted but not yet delivered; the records may still arrive"));
                case IngestBuffer::Wait::gave_up:
                    return answer(res, HTTPResponse::HTTP_SERVICE_UNAVAILABLE,
                                  error_json("the pipeline stopped before confirming delivery; the records may have arrived"));
                }
            }
            return answer(res, HTTPResponse::HTTP_ACCEPTED, "{\"accepted\":" + std::to_string(n) + "}");
        case IngestBuffer::Push::full:
            res.set("Retry-After", std::to_string(s_.retry_after_seconds));
            return answer(res, HTTPResponse::HTTP_TOO_MANY_REQUESTS, error_json("the pipeline is behind; send again later"));
        case IngestBuffer::Push::closed:
            return answer(res, HTTPResponse::HTTP_SERVICE_UNAVAILABLE, error_json("the pipeline is stopping"));
        }
    }

private:
    std::shared_ptr<IngestBuffer> buffer_;
    const IngestSettings &s_;
};

class Factory : public Poco::Net::HTTPRequestHandlerFactory {
public:
    Factory(std::shared_ptr<IngestBuffer> buffer, const IngestSettings &s) : buffer_(std::move(buffer)), s_(s) {}
    Poco::Net::HTTPRequestHandler *createRequestHandler(const Poco::Net::HTTPServerRequest &) override {
        return new IngestHandler(buffer_, s_);
    }

private:
    std::shared_ptr<IngestBuffer> buffer_;
    const IngestSettings &s_;
};

} // namespace

HttpIngest::HttpIngest(const Context &ctx) : host_(ctx.host) {
    json::Config c(ctx.config_json);
    address_ = c.string("address", "127.0.0.1");
    if (!c.has("port")) c.fail("port", "required: the port to listen on (0 for any)");
    port_ = int(c.integer("port", 0));
    if (port_ < 0 || port_ > 65535) c.fail("port", "expected 0 to 65535");
    settings_.path = c.string("path", "/ingest");
    if (settings_.path.empty() || settings_.path[0] != '/') c.fail("path", "expected a path starting with /");
    settings_.max_body_bytes = size_t(std::max<int64_t>(1, c.integer("max_body_bytes", 10 << 20)));
    buffer_records_ = size_t(std::max<int64_t>(1, c.integer("buffer_records", 10000)));
    server_threads_ = int(std::max<int64_t>(1, c.integer("server_threads", 64)));
    settings_.retry_after_seconds = int(std::max<int64_t>(1, c.integer("retry_after_s", 1)));
    std::string respond = c.string("respond", "delivered");
    if (respond != "delivered" && respond != "accepted") c.fail("respond", "expected delivered or accepted");
    settings_.wait_for_delivery = respond == "delivered";
    settings_.delivery_timeout = std::chrono::milliseconds(std::max<int64_t>(1, c.integer("delivery_timeout_ms", 30000)));
    tls_cert_ = c.string("tls_cert_file");
    tls_key_ = c.string("tls_key_file");
    tls_client_ca_ = c.string("tls_client_ca_file");
    if (tls_cert_.empty() != tls_key_.empty())
        c.fail(tls_cert_.empty() ? "tls_cert_file" : "tls_key_file", "HTTPS needs both tls_cert_file and tls_key_file");
    if (!tls_client_ca_.empty() && tls_cert_.empty()) c.fail("tls_client_ca_file", "needs tls_cert_file and tls_key_file");
    for (std::string *f : {&tls_cert_, &tls_key_, &tls_client_ca_})
        if (!f->empty()) *f = ctx.resolve_path(*f);
    if (!tls_cert_.empty()) {
        // Loaded now, so that `sluice validate` finds a bad file. With a
        // client CA, a client without a certificate it signed is refused
        // during the handshake.
        try {
            tls_ = new Poco::Net::Context(
                Poco::Net::Context::TLS_SERVER_USE, tls_key_, tls_cert_, tls_client_ca_,
                tls_client_ca_.empty() ? Poco::Net::Context::VERIFY_NONE : Poco::Net::Context::VERIFY_STRICT, 9, false);
        } catch (const Poco::Exception &e) {
            c.fail("tls_cert_file", "cannot load " + tls_cert_ + " / " + tls_key_ +
                                        (tls_client_ca_.empty() ? "" : " / " + tls_client_ca_) + ": " + e.displayText());
        }
    }
    if (std::string env = c.string("bearer_token_env"); !env.empty()) {
        const char *t = std::getenv(env.c_str());
        if (!t || !*t) c.fail("bearer_token_env", "environment variable " + env + " is not set");
        settings_.token = t;
    }
}

HttpIngest::~HttpIngest() { shut_down(); }

void HttpIngest::start() {
    buffer_ = std::make_shared<IngestBuffer>(buffer_records_);
    try {
        const Poco::Net::SocketAddress where(address_, Poco::UInt16(port_));
        Poco::Net::ServerSocket socket;
        if (tls_) socket = Poco::Net::SecureServerSocket(where, 256, tls_);
        else socket = Poco::Net::ServerSocket(where, 256);
        auto *params = new Poco::Net::HTTPServerParams;
        params->setMaxThreads(server_threads_);
        params->setMaxQueued(256);
        params->setKeepAlive(true);
        pool_ = std::make_unique<Poco::ThreadPool>(2, server_threads_ + 1);
        server_ = std::make_unique<Poco::Net::HTTPServer>(new Factory(buffer_, settings_), *pool_, socket, params);
        server_->start();
        port_ = socket.address().port();
    } catch (const Poco::Exception &e) {
        throw Error("cannot listen on " + address_ + ":" + std::to_string(port_) + ": " + e.displayText());
    }
    host_.info("listening on " + std::string(tls_ ? "https" : "http") + "://" + address_ + ":" + std::to_string(port_) + settings_.path);
}

bool HttpIngest::pull(Emitter &out, uint32_t max_records) {
    for (const std::string &r : buffer_->take(max_records)) out.emit_new(r, {attr(SLUICE_ATTR_SOURCE, "http")});
    return false; // runs until the pipeline is stopped
}

std::string HttpIngest::checkpoint() const { return buffer_ ? std::to_string(buffer_->taken()) : std::string(); }

void HttpIngest::acknowledged(std::string_view position) {
    uint64_t n = 0;
    auto [end, ec] = std::from_chars(position.data(), position.data() + position.size(), n);
    if (ec == std::errc() && end == position.data() + position.size()) buffer_->delivered(n);
}

void HttpIngest::shut_down() {
    if (buffer_) {
        buffer_->close();    // late requests get 503
        buffer_->give_up();  // no more acknowledgements will come
    }
    if (server_) {
        server_->stopAll(false); // waits for the requests being answered
        server_.reset();
    }
    if (pool_) {
        pool_->joinAll();
        pool_.reset();
    }
}

void HttpIngest::flush(Emitter &out) {
    // No new requests; everything already accepted goes into the pipeline.
    // The server keeps running until stop(), so the requests waiting for
    // these records get their answer once they are delivered.
    buffer_->close();
    for (const std::string &r : buffer_->take(SIZE_MAX)) out.emit_new(r, {attr(SLUICE_ATTR_SOURCE, "http")});
}

void HttpIngest::stop() { shut_down(); }

} // namespace sluice::plugins::http
