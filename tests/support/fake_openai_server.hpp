// Starts tests/fake_openai (a scripted OpenAI-compatible server on loopback)
// for one test and reads its statistics.
#pragma once

#include "child_process.hpp"

#include <boost/json.hpp>

#include <memory>
#include <string>
#include <vector>

namespace sluice::test {

class FakeOpenAI {
public:
    // Extra arguments: "--latency-ms", "50", "--tls-cert", ... Throws if it
    // does not come up.
    explicit FakeOpenAI(std::vector<std::string> args = {});
    ~FakeOpenAI();

    int port() const { return port_; }
    std::string base_url() const { return (tls_ ? "https://localhost:" : "http://127.0.0.1:") + std::to_string(port_); }
    // {"requests", "max_in_flight", "in_flight", "authorization", "prompts"}
    boost::json::object stats() const;
    void reset() const;

private:
    std::unique_ptr<ChildProcess> process_;
    int port_ = 0;
    bool tls_ = false;
};

} // namespace sluice::test
