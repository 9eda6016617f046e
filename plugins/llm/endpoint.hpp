// Where an OpenAI-compatible API lives: parsed from a base URL such as
// "http://localhost:11434" or "https://api.openai.com".
#pragma once

#include <stdexcept>
#include <string>

namespace sluice::plugins::llm {

struct Endpoint {
    bool tls = false;
    std::string host;
    std::string port;
    std::string path_prefix; // "" or "/something", never ending in '/'

    // Throws std::invalid_argument with the reason.
    static Endpoint parse(const std::string &base_url) {
        Endpoint e;
        std::string rest;
        if (base_url.rfind("http://", 0) == 0) {
            rest = base_url.substr(7);
        } else if (base_url.rfind("https://", 0) == 0) {
            e.tls = true;
            rest = base_url.substr(8);
        } else {
            throw std::invalid_argument("expected an http:// or https:// URL");
        }
        size_t slash = rest.find('/');
        std::string authority = rest.substr(0, slash);
        e.path_prefix = slash == std::string::npos ? "" : rest.substr(slash);
        while (!e.path_prefix.empty() && e.path_prefix.back() == '/') e.path_prefix.pop_back();
        // A base URL given with the API version ("/v1") is accepted as is.
        if (e.path_prefix.size() >= 3 && e.path_prefix.compare(e.path_prefix.size() - 3, 3, "/v1") == 0)
            e.path_prefix.resize(e.path_prefix.size() - 3);
        size_t colon = authority.rfind(':');
        if (colon != std::string::npos && authority.find(']') == std::string::npos) {
            e.host = authority.substr(0, colon);
            e.port = authority.substr(colon + 1);
        } else {
            e.host = authority;
            e.port = e.tls ? "443" : "80";
        }
        if (e.host.empty()) throw std::invalid_argument("no host name");
        if (e.port.empty() || e.port.find_first_not_of("0123456789") != std::string::npos)
            throw std::invalid_argument("bad port '" + e.port + "'");
        return e;
    }
};

} // namespace sluice::plugins::llm
