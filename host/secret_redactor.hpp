// The resolved values of config fields declared secret ("secret": true in a
// plugin's schema; Field::secret() in the config spec), kept out of
// everything Sluice writes about a run: log lines at every level, the report
// and its table, /status, validate and graph output, error messages. Each is
// replaced by "***". Records themselves (the data) are not touched.
#pragma once

#include <atomic>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace sluice {

class SecretRedactor {
public:
    static SecretRedactor &global();

    // Values shorter than 3 characters are not taken: replacing every "a"
    // would say nothing and ruin the text.
    void add(std::string value);
    bool empty() const { return empty_.load(std::memory_order_relaxed); }
    std::string redact(std::string_view text) const;
    void clear(); // tests

private:
    mutable std::mutex mutex_;
    std::vector<std::string> secrets_;
    std::atomic<bool> empty_{true};
};

// SecretRedactor::global().redact(text), cheap when there is no secret.
inline std::string redacted(std::string_view text) {
    const SecretRedactor &r = SecretRedactor::global();
    return r.empty() ? std::string(text) : r.redact(text);
}

} // namespace sluice
