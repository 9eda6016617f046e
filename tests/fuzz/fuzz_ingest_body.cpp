// libFuzzer target: the http ingest's request checks and body handling
// (inflating gzip or deflate within the limit, NDJSON and JSON arrays).
// Input: one byte choosing the encoding, then the body.
#include "ingest_request.hpp"

#include <cstdint>
#include <string>

using namespace sluice::plugins::http;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size == 0) return 0;
    static const char *encodings[] = {"", "gzip", "deflate", "x-gzip"};
    const char *encoding = encodings[data[0] % 4];
    IngestSettings s;
    s.max_body_bytes = 1 << 16;
    s.token = "t";
    std::string body(reinterpret_cast<const char *>(data + 1), size - 1);
    IngestHead head{"POST", std::string_view(body).substr(0, 64), "Bearer t", encoding, body.size()};
    check_head(head, s);
    IngestBuffer buffer(100);
    take_body(encoding, body, buffer, s);
    return 0;
}
