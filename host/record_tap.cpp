#include "record_tap.hpp"

#include <sluice/json.hpp>

#include <algorithm>
#include <cstring>

namespace sluice {

std::vector<std::string> TapSubscription::take(size_t max) {
    std::vector<std::string> out;
    std::lock_guard lock(mutex_);
    while (!lines_.empty() && out.size() < max) {
        out.push_back(std::move(lines_.front()));
        lines_.pop_front();
    }
    return out;
}

void TapSubscription::offer(std::string line) {
    offered_.fetch_add(1, std::memory_order_relaxed);
    std::unique_lock lock(mutex_, std::try_to_lock);
    if (!lock.owns_lock() || lines_.size() >= capacity_) {
        dropped_.fetch_add(1, std::memory_order_relaxed);
        return;
    }
    lines_.push_back(std::move(line));
}

std::shared_ptr<TapSubscription> RecordTap::subscribe(size_t output, size_t capacity) {
    auto sub = std::make_shared<TapSubscription>(output, capacity);
    std::lock_guard lock(mutex_);
    std::erase_if(subscriptions_, [](const auto &w) { return w.expired(); });
    subscriptions_.push_back(sub);
    readers_.store(subscriptions_.size(), std::memory_order_relaxed);
    return sub;
}

void RecordTap::offer(size_t output, const sluice_record *records, size_t count) {
    std::unique_lock lock(mutex_, std::try_to_lock);
    if (!lock.owns_lock()) return; // a reader is joining: this batch is not shown
    size_t live = 0;
    for (const auto &w : subscriptions_) {
        auto sub = w.lock();
        if (!sub) continue;
        ++live;
        if (sub->output() != output) continue;
        for (size_t i = 0; i < count; ++i) sub->offer(tap_line(records[i]));
    }
    if (live != subscriptions_.size()) {
        std::erase_if(subscriptions_, [](const auto &w) { return w.expired(); });
        readers_.store(subscriptions_.size(), std::memory_order_relaxed);
    }
}

std::string tap_line(const sluice_record &r) {
    std::string_view payload(r.payload ? r.payload : "", r.payload_len);
    const bool json = !r.content_type || std::strcmp(r.content_type, SLUICE_CONTENT_JSON) == 0;
    if (json && payload.find('\n') == std::string_view::npos && !payload.empty()) return std::string(payload);
    std::string line = "{\"id\":" + std::to_string(r.id) + ",\"content_type\":";
    json::append_string_lossy(line, r.content_type ? r.content_type : SLUICE_CONTENT_JSON);
    line += ",\"text\":";
    json::append_string_lossy(line, payload);
    return line + "}";
}

} // namespace sluice
