// What the http ingest answered, from the server's threads to the stage's:
// requests by status code (reported as counters "requests{code=NNN}", which
// the metrics endpoint turns into a label), and the requests it refused,
// each with the reason it gave the client, to be logged.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace sluice::plugins::http {

class AnswerLog {
public:
    // [server thread]
    void answered(int status, const std::string &body) {
        if (status >= 100 && status < 600) counts_[size_t(status)].fetch_add(1, std::memory_order_relaxed);
        if (status < 400) return;
        std::lock_guard lock(mutex_);
        if (refused_.size() < kMaxWaiting) refused_.emplace_back(status, body.substr(0, 300));
    }

    // [stage thread] Counts since the last call, by status.
    std::vector<std::pair<int, uint64_t>> take_counts() {
        std::vector<std::pair<int, uint64_t>> out;
        for (size_t s = 100; s < counts_.size(); ++s) {
            uint64_t now = counts_[s].load(std::memory_order_relaxed);
            if (now != reported_[s]) {
                out.emplace_back(int(s), now - reported_[s]);
                reported_[s] = now;
            }
        }
        return out;
    }
    // [stage thread] Refused requests not yet logged (status, answer body).
    std::vector<std::pair<int, std::string>> take_refused() {
        std::lock_guard lock(mutex_);
        return std::exchange(refused_, {});
    }

private:
    static constexpr size_t kMaxWaiting = 100; // more between two pulls are only counted
    std::array<std::atomic<uint64_t>, 600> counts_{};
    std::array<uint64_t, 600> reported_{};
    std::mutex mutex_;
    std::vector<std::pair<int, std::string>> refused_;
};

} // namespace sluice::plugins::http
