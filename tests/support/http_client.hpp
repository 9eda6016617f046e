// One HTTP exchange with a server on 127.0.0.1, for the end-to-end tests:
// the http ingest, the admin endpoint. Never throws: a request that got no
// answer has status -1 and the reason as its body, so that the assertion on
// the status says what happened.
#pragma once

#include <Poco/Net/HTTPClientSession.h>
#include <Poco/Net/HTTPRequest.h>
#include <Poco/Net/HTTPResponse.h>
#include <Poco/StreamCopier.h>

#include <string>
#include <utility>
#include <vector>

namespace sluice::test {

struct HttpReply {
    int status = 0;
    std::string body;
    Poco::Net::NameValueCollection headers;
    std::string header(const std::string &name) const { return headers.get(name, ""); }
};

// `headers` are sent as given; a request other than GET carries `body` with
// `content_type`. `timeout_s` bounds each wait (Poco's default is 60 s).
inline HttpReply http_request(int port, const std::string &method, const std::string &path,
                              const std::string &body = "",
                              const std::vector<std::pair<std::string, std::string>> &headers = {},
                              const std::string &content_type = "application/x-ndjson", int timeout_s = 60) {
    HttpReply r;
    try {
        Poco::Net::HTTPClientSession s("127.0.0.1", Poco::UInt16(port));
        s.setTimeout(Poco::Timespan(timeout_s, 0));
        Poco::Net::HTTPRequest req(method, path, Poco::Net::HTTPMessage::HTTP_1_1);
        for (const auto &[k, v] : headers) req.set(k, v);
        if (method != Poco::Net::HTTPRequest::HTTP_GET) {
            req.setContentType(content_type);
            req.setContentLength(std::streamsize(body.size()));
        }
        s.sendRequest(req) << body;
        Poco::Net::HTTPResponse res;
        Poco::StreamCopier::copyToString(s.receiveResponse(res), r.body);
        r.status = int(res.getStatus());
        for (const auto &[k, v] : res) r.headers.add(k, v);
    } catch (const Poco::Exception &e) {
        r.status = -1;
        r.body = e.displayText();
    }
    return r;
}

} // namespace sluice::test
