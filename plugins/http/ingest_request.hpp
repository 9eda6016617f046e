// What the http ingest answers to one request, apart from the network: the
// checks on the request line and headers (path, method, token, size,
// encoding), and what to do with a whole body (inflate it within the size
// limit, parse its records, hand them to the buffer). Server-free, so it is
// tested directly.
#pragma once

#include "ingest_buffer.hpp"

#include <sluice/secret_check.hpp>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace sluice::plugins::http {

struct IngestSettings {
    std::string path = "/ingest";
    size_t max_body_bytes = 10u << 20;
    std::string token; // "" = no authentication
    int retry_after_seconds = 1;
    bool wait_for_delivery = true;
    std::chrono::milliseconds delivery_timeout{30000};
};

struct IngestAnswer {
    int status = 0;
    std::string body; // JSON
    std::vector<std::pair<std::string, std::string>> headers;
    bool close = false;        // close the connection after answering
    uint64_t wait_for = 0;     // > 0: answer only once records up to this number are delivered
    size_t accepted = 0;       // records taken from the request
};

// The request head, as the server saw it.
struct IngestHead {
    std::string_view method, target, authorization, content_encoding;
    std::optional<uint64_t> content_length;
    std::string client; // the client's address
};

// An answer when the head alone settles it (404, 405, 401, 413, 415, and
// 429 for an address that keeps sending wrong tokens: `throttle` counts
// them); nothing when the body should be read.
std::optional<IngestAnswer> check_head(const IngestHead &head, const IngestSettings &s,
                                       AuthFailureThrottle *throttle = nullptr);

// Takes a whole body (as sent: `encoding` is the Content-Encoding) into
// `buffer`: 202 (or a wait for delivery), 400 naming the bad line, 413, 429
// with Retry-After, 503 when the pipeline is stopping.
IngestAnswer take_body(std::string_view encoding, std::string body, IngestBuffer &buffer, const IngestSettings &s);

// The answers once the wait for delivery ends.
IngestAnswer delivered_answer(size_t accepted);
IngestAnswer undelivered_answer(bool timed_out);
IngestAnswer too_large_answer(const IngestSettings &s);

// The records of a body: a JSON array of objects, one object, or NDJSON.
// Returns the problem (naming the line or element), or "".
std::string parse_body(std::string_view body, std::vector<std::string> &records);

} // namespace sluice::plugins::http
