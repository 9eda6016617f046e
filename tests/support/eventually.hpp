// Waits for a condition a test cannot be told about (another process's
// progress), polling it, for at most `limit`: whatever the machine's speed.
#pragma once

#include <chrono>
#include <functional>
#include <thread>

namespace sluice::test {

inline bool eventually(const std::function<bool()> &done, std::chrono::milliseconds limit = std::chrono::seconds(90),
                       std::chrono::milliseconds step = std::chrono::milliseconds(50)) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < deadline) {
        if (done()) return true;
        std::this_thread::sleep_for(step);
    }
    return done();
}

} // namespace sluice::test
