// sluice/secret_check.hpp - checking a secret a client sent (a bearer token,
// an API key), for the host and for plugins that serve requests alike.
//
//   static sluice::AuthFailureThrottle throttle;          // one per server
//   if (throttle.blocked(client_ip)) return reply_429(throttle.retry_after_s(client_ip));
//   if (!sluice::secrets_equal(header, "Bearer " + token)) {
//       throttle.failed(client_ip);
//       return reply_401();                               // same answer whatever was wrong
//   }
//   throttle.succeeded(client_ip);
//
// secrets_equal takes a time that depends on the length of what was sent
// only, never on where it first differs from the secret, so the secret
// cannot be found byte by byte by timing answers. The throttle stops one
// address guessing: after `max_failures` wrong secrets within `window` it is
// refused (429) until `window` has passed since its last failure. Tell the
// client nothing about which part was wrong. Header-only, C++20.
#pragma once

#include <chrono>
#include <cstddef>
#include <map>
#include <mutex>
#include <string>
#include <string_view>

namespace sluice {

// Whether `given` equals `expected`; an empty `expected` matches nothing.
inline bool secrets_equal(std::string_view given, std::string_view expected) {
    // Every byte of `given` is compared (against `expected` repeated), and
    // the differences are OR-ed: no early exit the compiler may put back.
    volatile unsigned char diff = given.size() == expected.size() ? 0 : 1;
    for (size_t i = 0; i < given.size(); ++i)
        diff = diff | static_cast<unsigned char>(given[i] ^ (expected.empty() ? 0 : expected[i % expected.size()]));
    return diff == 0 && !expected.empty();
}

class AuthFailureThrottle {
public:
    using Clock = std::chrono::steady_clock;

    explicit AuthFailureThrottle(unsigned max_failures = 10, std::chrono::seconds window = std::chrono::seconds(60),
                                 size_t max_addresses = 10000)
        : max_failures_(max_failures), window_(window), max_addresses_(max_addresses) {}

    // Whether `address` is refused now (without looking at its secret).
    bool blocked(const std::string &address, Clock::time_point now = Clock::now()) {
        std::lock_guard lock(mutex_);
        auto it = failures_.find(address);
        if (it == failures_.end()) return false;
        if (now - it->second.last >= window_) {
            failures_.erase(it);
            return false;
        }
        return it->second.count >= max_failures_;
    }
    // Seconds until a blocked `address` may try again (at least 1).
    long retry_after_s(const std::string &address, Clock::time_point now = Clock::now()) {
        std::lock_guard lock(mutex_);
        auto it = failures_.find(address);
        if (it == failures_.end()) return 1;
        auto left = std::chrono::ceil<std::chrono::seconds>(it->second.last + window_ - now).count();
        return left < 1 ? 1 : static_cast<long>(left);
    }
    // `address` sent a wrong secret (or none).
    void failed(const std::string &address, Clock::time_point now = Clock::now()) {
        std::lock_guard lock(mutex_);
        auto it = failures_.find(address);
        if (it != failures_.end() && now - it->second.last >= window_) it->second.count = 0;
        if (it == failures_.end()) {
            forget_stale(now);
            it = failures_.emplace(address, Entry{}).first;
        }
        ++it->second.count;
        it->second.last = now;
    }
    // `address` sent the right secret: its failures are forgotten.
    void succeeded(const std::string &address) {
        std::lock_guard lock(mutex_);
        failures_.erase(address);
    }
    // Addresses with failures remembered (at most max_addresses).
    size_t tracked_addresses() {
        std::lock_guard lock(mutex_);
        return failures_.size();
    }

private:
    struct Entry {
        unsigned count = 0;
        Clock::time_point last;
    };
    // Bounded memory whatever the number of addresses: stale entries go
    // first, then (a flood from many addresses) the oldest.
    void forget_stale(Clock::time_point now) {
        if (failures_.size() < max_addresses_) return;
        for (auto it = failures_.begin(); it != failures_.end();)
            it = now - it->second.last >= window_ ? failures_.erase(it) : std::next(it);
        while (failures_.size() >= max_addresses_) {
            auto oldest = failures_.begin();
            for (auto it = failures_.begin(); it != failures_.end(); ++it)
                if (it->second.last < oldest->second.last) oldest = it;
            failures_.erase(oldest);
        }
    }

    const unsigned max_failures_;
    const std::chrono::seconds window_;
    const size_t max_addresses_;
    std::mutex mutex_;
    std::map<std::string, Entry> failures_;
};

} // namespace sluice
