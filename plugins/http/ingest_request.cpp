#include "ingest_request.hpp"

#include <sluice/json.hpp>

#include <Poco/Exception.h>
#include <Poco/InflatingStream.h>
#include <Poco/String.h>
#include <Poco/URI.h>

#include <boost/json.hpp>

#include <sstream>

namespace sluice::plugins::http {

namespace bj = boost::json;

namespace {

std::string error_json(const std::string &message) {
    std::string out = "{\"error\":";
    json::append_string_lossy(out, message);
    return out + "}";
}

IngestAnswer reply(int status, const std::string &message) { return IngestAnswer{status, error_json(message), {}, false, 0, 0}; }

} // namespace

IngestAnswer too_large_answer(const IngestSettings &s) {
    IngestAnswer a = reply(413, "the body is larger than " + std::to_string(s.max_body_bytes) + " bytes");
    a.close = true;
    return a;
}

std::optional<IngestAnswer> check_head(const IngestHead &head, const IngestSettings &s, AuthFailureThrottle *throttle) {
    std::string path;
    try {
        path = Poco::URI(std::string(head.target)).getPath();
    } catch (const std::exception &) {
        return reply(400, "bad request target");
    }
    if (path != s.path) return reply(404, "not found");
    if (head.method != "POST") {
        IngestAnswer a = reply(405, "use POST");
        a.headers.emplace_back("Allow", "POST");
        return a;
    }
    if (!s.token.empty()) {
        // The same 401 whatever was wrong; an address that keeps guessing
        // is refused before its token is looked at.
        if (throttle && throttle->blocked(head.client)) {
            IngestAnswer a = reply(429, "too many requests without a valid bearer token from this address");
            a.headers.emplace_back("Retry-After", std::to_string(throttle->retry_after_s(head.client)));
            return a;
        }
        if (!secrets_equal(head.authorization, "Bearer " + s.token)) {
            if (throttle) throttle->failed(head.client);
            IngestAnswer a = reply(401, "a valid bearer token is required");
            a.headers.emplace_back("WWW-Authenticate", "Bearer");
            return a;
        }
        if (throttle) throttle->succeeded(head.client);
    }
    if (head.content_length && *head.content_length > s.max_body_bytes) return too_large_answer(s);
    std::string encoding = Poco::toLower(std::string(head.content_encoding.empty() ? "identity" : head.content_encoding));
    if (encoding != "identity" && encoding != "gzip" && encoding != "x-gzip" && encoding != "deflate")
        return reply(415, "unsupported Content-Encoding '" + encoding + "' (use gzip, deflate or none)");
    return std::nullopt;
}

std::string parse_body(std::string_view body, std::vector<std::string> &records) {
    size_t first = body.find_first_not_of(" \t\r\n");
    if (first == std::string_view::npos) return "empty body";
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
        std::string_view line(body.data() + pos, (nl == std::string_view::npos ? body.size() : nl) - pos);
        pos = nl == std::string_view::npos ? body.size() : nl + 1;
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

IngestAnswer take_body(std::string_view encoding_header, std::string body, IngestBuffer &buffer, const IngestSettings &s) {
    if (body.size() > s.max_body_bytes) return too_large_answer(s);
    const std::string encoding =
        Poco::toLower(std::string(encoding_header.empty() ? "identity" : encoding_header));
    if (encoding != "identity") {
        // Inflated within the size limit, so a small bomb cannot blow up memory.
        std::istringstream compressed(std::move(body));
        Poco::InflatingInputStream in(compressed, encoding == "deflate" ? Poco::InflatingStreamBuf::STREAM_ZLIB
                                                                        : Poco::InflatingStreamBuf::STREAM_GZIP);
        in.exceptions(std::ios::badbit); // a corrupt stream throws rather than looking like its end
        std::string inflated;
        char chunk[65536];
        try {
            while (in.read(chunk, sizeof chunk) || in.gcount() > 0) {
                inflated.append(chunk, size_t(in.gcount()));
                if (inflated.size() > s.max_body_bytes) return too_large_answer(s);
            }
        } catch (const std::exception &e) {
            const auto *poco = dynamic_cast<const Poco::Exception *>(&e);
            return reply(400, "the body is not valid " + encoding + ": " + (poco ? poco->displayText() : e.what()));
        }
        body = std::move(inflated);
    }
    std::vector<std::string> records;
    if (std::string problem = parse_body(body, records); !problem.empty())
        return reply(400, problem); // nothing of it is taken
    const size_t n = records.size();
    uint64_t last = 0;
    switch (buffer.push_all(std::move(records), last)) {
    case IngestBuffer::Push::accepted:
        if (s.wait_for_delivery) {
            IngestAnswer a;
            a.wait_for = last;
            a.accepted = n;
            return a;
        }
        return delivered_answer(n);
    case IngestBuffer::Push::full: {
        IngestAnswer a = reply(429, "the pipeline is behind; send again later");
        a.headers.emplace_back("Retry-After", std::to_string(s.retry_after_seconds));
        return a;
    }
    case IngestBuffer::Push::closed: break;
    }
    return reply(503, "the pipeline is stopping");
}

IngestAnswer delivered_answer(size_t accepted) {
    return IngestAnswer{202, "{\"accepted\":" + std::to_string(accepted) + "}", {}, false, 0, accepted};
}

IngestAnswer undelivered_answer(bool timed_out) {
    return timed_out ? reply(504, "accepted but not yet delivered; the records may still arrive")
                     : reply(503, "the pipeline stopped before confirming delivery; the records may have arrived");
}

} // namespace sluice::plugins::http
