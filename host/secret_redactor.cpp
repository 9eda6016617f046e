#include "secret_redactor.hpp"

#include <algorithm>

namespace sluice {

SecretRedactor &SecretRedactor::global() {
    static SecretRedactor r;
    return r;
}

void SecretRedactor::add(std::string value) {
    if (value.size() < 3) return;
    std::lock_guard lock(mutex_);
    if (std::find(secrets_.begin(), secrets_.end(), value) != secrets_.end()) return;
    secrets_.push_back(std::move(value));
    // Longest first: a secret that contains another is replaced whole.
    std::sort(secrets_.begin(), secrets_.end(), [](const auto &a, const auto &b) { return a.size() > b.size(); });
    empty_ = false;
}

std::string SecretRedactor::redact(std::string_view text) const {
    std::string out(text);
    std::lock_guard lock(mutex_);
    for (const std::string &s : secrets_) {
        for (size_t at = out.find(s); at != std::string::npos; at = out.find(s, at + 3)) out.replace(at, s.size(), "***");
    }
    return out;
}

void SecretRedactor::clear() {
    std::lock_guard lock(mutex_);
    secrets_.clear();
    empty_ = true;
}

} // namespace sluice
