#include "http_loader.hpp"

#include "../common/reachable.hpp"

#include <sluice/backoff.hpp>
#include <sluice/json.hpp>

#include <Poco/Net/Context.h>
#include <Poco/Net/HTTPRequest.h>
#include <Poco/Net/HTTPResponse.h>
#include <Poco/Net/HTTPSClientSession.h>
#include <Poco/Net/NetException.h>
#include <Poco/StreamCopier.h>

#include <cstdlib>
#include <thread>

namespace sluice::plugins::http {

HttpLoader::HttpLoader(const Context &ctx) : host_(ctx.host) {
    json::Config c(ctx.config_json);
    try {
        uri_ = Poco::URI(c.required_string("url"));
    } catch (const Poco::Exception &e) {
        c.fail("url", e.displayText());
    }
    if (uri_.getScheme() != "http" && uri_.getScheme() != "https") c.fail("url", "expected an http:// or https:// URL");
    if (uri_.getHost().empty()) c.fail("url", "no host name");
    std::string format = c.string("format");
    if (format != "ndjson" && format != "json") c.fail("format", "expected ndjson or json");
    json_array_ = format == "json";
    if (const auto *h = c.find("headers"); h && h->is_object())
        for (const auto &kv : h->get_object())
            if (kv.value().is_string()) headers_.emplace_back(std::string(kv.key()), std::string(kv.value().get_string()));
    if (std::string token = c.string("bearer_token"); !token.empty()) {
        token_ = token;
    } else if (std::string env = c.string("bearer_token_env"); !env.empty()) {
        const char *t = std::getenv(env.c_str());
        if (!t || !*t) c.fail("bearer_token_env", "environment variable " + env + " is not set");
        token_ = t;
    }
    timeout_ = std::chrono::milliseconds(c.integer("timeout_ms"));
    max_request_bytes_ = size_t(c.integer("max_request_bytes"));
    retry_ = config::RetrySettings::read(c);
    tls_verify_ = c.boolean("tls_verify");
    ca_file_ = c.string("ca_file");
    if (!ca_file_.empty()) ca_file_ = ctx.resolve_path(ca_file_);
}

std::vector<std::string> HttpLoader::preflight() const {
    if (std::string p = tcp_reachable(uri_.getHost(), std::to_string(uri_.getPort()), std::chrono::seconds(3));
        !p.empty())
        return {"url: " + p};
    return {};
}

void HttpLoader::start() {
    if (uri_.getScheme() == "https") {
        Poco::Net::Context::Ptr context = new Poco::Net::Context(
            Poco::Net::Context::TLS_CLIENT_USE, "", "", ca_file_,
            tls_verify_ ? Poco::Net::Context::VERIFY_RELAXED : Poco::Net::Context::VERIFY_NONE, 9,
            ca_file_.empty());
        session_ = std::make_unique<Poco::Net::HTTPSClientSession>(uri_.getHost(), uri_.getPort(), context);
    } else {
        session_ = std::make_unique<Poco::Net::HTTPClientSession>(uri_.getHost(), uri_.getPort());
    }
    session_->setKeepAlive(true);
    session_->setTimeout(Poco::Timespan(Poco::Timespan::TimeDiff(timeout_.count()) * 1000));
}

HttpLoader::Reply HttpLoader::post(const std::string &body) {
    Reply r;
    try {
        Poco::Net::HTTPRequest req(Poco::Net::HTTPRequest::HTTP_POST, uri_.getPathAndQuery(),
                                   Poco::Net::HTTPMessage::HTTP_1_1);
        req.setContentType(json_array_ ? "application/json" : "application/x-ndjson");
        req.setContentLength(std::streamsize(body.size()));
        req.setKeepAlive(true);
        if (!token_.empty()) req.set("Authorization", "Bearer " + token_);
        for (const auto &[k, v] : headers_) req.set(k, v);
        session_->sendRequest(req) << body;
        Poco::Net::HTTPResponse res;
        std::istream &in = session_->receiveResponse(res);
        Poco::StreamCopier::copyToString(in, r.body);
        r.status = int(res.getStatus());
        if (res.has("Retry-After")) r.retry_after = res.get("Retry-After");
    } catch (const Poco::TimeoutException &) {
        r.error = "no answer within " + std::to_string(timeout_.count()) + " ms";
        session_->reset();
    } catch (const Poco::Exception &e) {
        r.error = e.displayText();
        session_->reset();
    } catch (const std::exception &e) {
        r.error = e.what();
        session_->reset();
    }
    return r;
}

void HttpLoader::process(Input in, Emitter &out) {
    // As few requests as max_request_bytes allows (a commit window of
    // several batches may need more than one).
    std::string body;
    std::vector<uint32_t> sent;
    auto finish = [&] {
        if (sent.empty()) return;
        if (json_array_) body += ']';
        send(body, sent, out);
        body.clear();
        sent.clear();
    };
    for (uint32_t i = 0; i < in.size(); ++i) {
        if (!in[i].is_json()) {
            out.fail(i, "http: the record is not JSON (" + std::string(in[i].content_type()) + ")");
            continue;
        }
        const std::string_view payload = in[i].payload();
        if (!sent.empty() && body.size() + payload.size() + 2 > max_request_bytes_) finish();
        body += sent.empty() ? (json_array_ ? "[" : "") : (json_array_ ? "," : "");
        body.append(payload);
        if (!json_array_) body += '\n';
        sent.push_back(i);
    }
    finish();
}

void HttpLoader::send(const std::string &body, const std::vector<uint32_t> &sent, Emitter &out) {
    std::string problem;
    int status = 0;
    for (int attempt = 0; attempt < retry_.max_attempts; ++attempt) {
        if (attempt > 0) {
            std::this_thread::sleep_for(backoff_delay(retry_.backoff, retry_.max_backoff, uint32_t(attempt)));
            ++retries_;
        }
        ++requests_;
        Reply r = post(body);
        status = r.status;
        if (r.status >= 200 && r.status < 300) {
            bytes_ += int64_t(body.size());
            return;
        }
        std::string excerpt = r.body.substr(0, 200);
        for (char &c : excerpt)
            if (c == '\n' || c == '\r') c = ' ';
        problem = r.status ? "HTTP " + std::to_string(r.status) + (excerpt.empty() ? "" : ": " + excerpt) : r.error;
        const bool retryable = r.status == 0 || r.status == 408 || r.status == 429 || r.status >= 500;
        if (!retryable) break;
        if (!r.retry_after.empty() && r.retry_after.find_first_not_of("0123456789") == std::string::npos &&
            r.retry_after.size() < 6 && attempt + 1 < retry_.max_attempts)
            std::this_thread::sleep_for(std::chrono::seconds(std::stoi(r.retry_after)));
        if (attempt + 1 == retry_.max_attempts)
            problem = "gave up after " + std::to_string(retry_.max_attempts) + " attempts: " + problem;
    }
    // The endpoint refused what it was sent (400, 413, 422 ...): that is
    // about the records, so they take the error path. An endpoint that is
    // down, overloaded, unreachable, gone or refusing our credentials cannot
    // take anything: never a record error (the host retries, then fails).
    if (status == 0 || status == 401 || status == 403 || status == 404 || status == 405 || status == 407 ||
        status == 408 || status == 429 || status >= 500)
        throw EnvironmentError("http: " + uri_.getScheme() + "://" + uri_.getHost() + ":" + std::to_string(uri_.getPort()) +
                               uri_.getPath() + ": " + problem);
    for (uint32_t i : sent) out.fail(i, "http: " + problem);
}

void HttpLoader::flush(Emitter &) {
    host_.counter("requests", requests_);
    host_.counter("retries", retries_);
    host_.counter("bytes_sent", bytes_);
}

} // namespace sluice::plugins::http
