// libFuzzer target: the JSON-schema checker that checks every plugin config.
// Input: a schema line, then a document.
#include <sluice/json_schema.hpp>

#include <boost/json.hpp>

#include <cstdint>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    std::string text(reinterpret_cast<const char *>(data), size);
    size_t nl = text.find('\n');
    if (nl == std::string::npos) return 0;
    boost::system::error_code ec1, ec2;
    boost::json::value schema = boost::json::parse(text.substr(0, nl), ec1);
    boost::json::value doc = boost::json::parse(text.substr(nl + 1), ec2);
    if (ec1 || ec2) return 0;
    sluice::json::check_schema(doc, schema, "/config", data[0] & 1);
    return 0;
}
