#include "error_policy.hpp"

#include <sluice/json.hpp>

#include <boost/json.hpp>

#include <algorithm>
#include <ctime>
#include <random>

namespace sluice {

std::string_view then_name(ErrorPolicy::Then then) {
    switch (then) {
    case ErrorPolicy::Then::skip: return "skip";
    case ErrorPolicy::Then::dead_letter: return "dead_letter";
    case ErrorPolicy::Then::fail: return "fail";
    }
    return "skip";
}

std::chrono::milliseconds retry_delay(const ErrorPolicy &policy, uint32_t attempt) {
    thread_local std::minstd_rand rng{std::random_device{}()};
    int64_t d = policy.backoff.count();
    for (uint32_t i = 1; i < attempt && d < policy.max_backoff.count(); ++i) d *= 2;
    d = std::min<int64_t>(d, policy.max_backoff.count());
    std::uniform_int_distribution<int64_t> jitter(0, d / 2);
    return std::chrono::milliseconds(d + jitter(rng));
}

std::string dead_letter_envelope(std::string_view payload, bool payload_is_json, uint64_t record_id,
                                 const std::string &stage, const std::string &plugin, std::string_view error,
                                 uint32_t attempts, std::string_view kind,
                                 const std::vector<std::pair<std::string_view, std::string_view>> &attributes) {
    std::string out = "{\"record\":";
    bool embedded = false;
    if (payload_is_json) {
        boost::system::error_code ec;
        boost::json::parser p;
        p.write(payload.data(), payload.size(), ec);
        if (!ec) {
            out.append(payload);
            embedded = true;
        }
    }
    if (!embedded) json::append_string(out, payload);
    out += ",\"record_id\":" + std::to_string(record_id);
    out += ",\"stage\":";
    json::append_string(out, stage);
    out += ",\"plugin\":";
    json::append_string(out, plugin);
    out += ",\"kind\":";
    json::append_string(out, kind);
    out += ",\"error\":";
    json::append_string(out, error);
    out += ",\"attempts\":" + std::to_string(attempts);
    char when[32];
    std::time_t now = std::time(nullptr);
    std::tm tm{};
    gmtime_r(&now, &tm);
    std::strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
    out += ",\"time\":\"";
    out += when;
    out += "\",\"attributes\":{";
    bool first = true;
    for (const auto &[k, v] : attributes) {
        if (!first) out += ',';
        first = false;
        json::append_string(out, k);
        out += ':';
        json::append_string(out, v);
    }
    out += "}}";
    return out;
}

} // namespace sluice
