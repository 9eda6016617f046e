#include "pull_marker.hpp"

#include <sluice/json.hpp>

#include <boost/json.hpp>

namespace sluice {

namespace bj = boost::json;

std::optional<PullMarker> PullMarker::parse(std::string_view text, std::string &problem) {
    boost::system::error_code ec;
    bj::value v = bj::parse(text, ec);
    const bj::object *o = ec ? nullptr : v.if_object();
    const bj::value *extractor = o ? o->if_contains("extractor") : nullptr;
    const bj::value *pulls = o ? o->if_contains("pulls") : nullptr;
    if (!extractor || !extractor->is_string() || !pulls || !pulls->is_array()) {
        problem = "not a marker Sluice wrote: " + std::string(text.substr(0, 200));
        return std::nullopt;
    }
    std::vector<uint64_t> out;
    for (const bj::value &p : pulls->get_array()) {
        if (!p.is_int64() || p.get_int64() < 0) {
            problem = "not a marker Sluice wrote (pulls): " + std::string(text.substr(0, 200));
            return std::nullopt;
        }
        out.push_back(uint64_t(p.get_int64()));
    }
    return PullMarker(std::string(extractor->get_string()), std::move(out));
}

std::string PullMarker::text() const {
    std::string out = "{\"extractor\":";
    json::append_string(out, extractor_);
    out += ",\"pulls\":[";
    for (size_t i = 0; i < pulls_.size(); ++i) {
        if (i) out += ',';
        out += std::to_string(pulls_[i]);
    }
    return out + "]}";
}

} // namespace sluice
