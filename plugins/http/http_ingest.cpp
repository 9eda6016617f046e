#include "http_ingest.hpp"

#include <sluice/json.hpp>

#include <boost/asio/ssl/context.hpp>

#include <charconv>
#include <cstdlib>

#include <cstring>

namespace sluice::plugins::http {

HttpIngest::HttpIngest(const Context &ctx) : host_(ctx.host) {
    json::Config c(ctx.config_json);
    address_ = c.string("address");
    port_ = int(c.integer("port"));
    settings_.path = c.string("path");
    if (settings_.path.empty() || settings_.path[0] != '/') c.fail("path", "expected a path starting with /");
    settings_.max_body_bytes = size_t(c.integer("max_body_bytes"));
    buffer_records_ = size_t(c.integer("buffer_records"));
    limits_.io_threads = int(c.integer("server_threads"));
    limits_.max_connections = size_t(c.integer("max_connections"));
    limits_.read_timeout = std::chrono::milliseconds(c.integer("read_timeout_ms"));
    limits_.body_timeout = std::chrono::milliseconds(c.integer("body_timeout_ms"));
    limits_.max_requests_per_connection = size_t(c.integer("max_requests_per_connection"));
    settings_.retry_after_seconds = int(c.integer("retry_after_s"));
    std::string respond = c.string("respond");
    if (respond != "delivered" && respond != "accepted") c.fail("respond", "expected delivered or accepted");
    settings_.wait_for_delivery = respond == "delivered";
    settings_.delivery_timeout = std::chrono::milliseconds(c.integer("delivery_timeout_ms"));
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
        namespace ssl = boost::asio::ssl;
        try {
            tls_ = std::make_shared<ssl::context>(ssl::context::tls_server);
            tls_->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 | ssl::context::no_sslv3 |
                              ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1);
            tls_->use_certificate_chain_file(tls_cert_);
            tls_->use_private_key_file(tls_key_, ssl::context::pem);
            if (!tls_client_ca_.empty()) {
                tls_->load_verify_file(tls_client_ca_);
                tls_->set_verify_mode(ssl::verify_peer | ssl::verify_fail_if_no_peer_cert);
            }
        } catch (const std::exception &e) {
            c.fail("tls_cert_file", "cannot load " + tls_cert_ + " / " + tls_key_ +
                                        (tls_client_ca_.empty() ? "" : " / " + tls_client_ca_) + ": " + e.what());
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
        server_ = std::make_unique<IngestServer>(address_, port_, tls_, buffer_, settings_, limits_, answers_);
    } catch (const std::exception &e) {
        throw Error("cannot listen on " + address_ + ":" + std::to_string(port_) + ": " + e.what());
    }
    const bool chosen = port_ == 0;
    port_ = server_->port();
    const std::string url =
        std::string(tls_ ? "https" : "http") + "://" + address_ + ":" + std::to_string(port_) + settings_.path;
    // A port the system chose is shown whatever the log level: clients could
    // not find the service otherwise.
    if (chosen) host_.warn("listening on " + url + " (port chosen by the system)");
    else host_.info("listening on " + url);
}

const void *HttpIngest::extension(const char *id) const {
    static const sluice_metric metrics[] = {
        {"requests", SLUICE_METRIC_COUNTER, 0, "requests",
         "requests answered, by status code (requests{code=202} ...): 202 delivered, 4xx refused, 429/503 busy, "
         "504 not confirmed in time"},
    };
    static const sluice_metrics_ext ext = {sizeof(sluice_metrics_ext), 1, metrics, 0, 0, nullptr, nullptr};
    return id && std::strcmp(id, SLUICE_EXT_METRICS) == 0 ? &ext : nullptr;
}

void HttpIngest::report_answers() {
    for (const auto &[status, n] : answers_->take_counts())
        host_.counter(("requests{code=" + std::to_string(status) + "}").c_str(), int64_t(n));
    for (const auto &[status, body] : answers_->take_refused()) {
        if (refusals_logged_ < kRefusalsLogged)
            host_.warn("refused a request with " + std::to_string(status) + ": " + body);
        else if (refusals_logged_ == kRefusalsLogged)
            host_.warn("further refused requests are only counted (requests{code=...} in the report)");
        ++refusals_logged_;
    }
}

bool HttpIngest::pull(Emitter &out, uint32_t max_records) {
    report_answers();
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
        buffer_->close();   // late requests get 503
        buffer_->give_up(); // no more acknowledgements will come
    }
    server_.reset(); // lets the requests being answered finish
}

void HttpIngest::flush(Emitter &out) {
    // No new requests; everything already accepted goes into the pipeline.
    // The server keeps running until stop(), so the requests waiting for
    // these records get their answer once they are delivered.
    buffer_->close();
    for (const std::string &r : buffer_->take(SIZE_MAX)) out.emit_new(r, {attr(SLUICE_ATTR_SOURCE, "http")});
    report_answers();
}

void HttpIngest::stop() { shut_down(); }

} // namespace sluice::plugins::http
