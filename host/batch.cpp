#include "batch.hpp"

#include <cstring>
#include <mutex>
#include <set>
#include <string>

namespace sluice {

// Bytes to skip from `p` to the next multiple of `align` (a power of two:
// a mask, not a division, on this path of every record).
static size_t padding_for(const char *p, size_t align) { return size_t(-reinterpret_cast<uintptr_t>(p)) & (align - 1); }

char *ByteArena::allocate(size_t n, size_t align) {
    size_t pad = cur_ ? padding_for(cur_, align) : 0;
    if (!cur_ || n + pad > left_) {
        size_t size = n + align > kChunk ? n + align : kChunk;
        chunks_.emplace_back(new char[size]);
        cur_ = chunks_.back().get();
        left_ = size;
        reserved_ += size;
        MemoryBudget::global().allocated(size);
        pad = padding_for(cur_, align);
    }
    char *p = cur_ + pad;
    cur_ += pad + n;
    left_ -= pad + n;
    return p;
}

const char *ByteArena::copy(std::string_view bytes) {
    if (bytes.empty()) return "";
    char *p = allocate(bytes.size());
    std::memcpy(p, bytes.data(), bytes.size());
    return p;
}

void Batch::keep(const std::shared_ptr<BatchStorage> &other) {
    if (!other || other == storage) return;
    auto &parents = storage->parents;
    // Process calls forward from one input batch at a time, so the source is
    // almost always the last one added.
    if (!parents.empty() && parents.back() == other) return;
    for (const auto &p : parents)
        if (p == other) return;
    parents.push_back(other);
}

const char *intern_content_type(const char *content_type) {
    if (!content_type || std::strcmp(content_type, SLUICE_CONTENT_JSON) == 0) return nullptr;
    // A small per-thread cache keeps the lock off the hot path.
    thread_local const char *last_in = nullptr;
    thread_local const char *last_out = nullptr;
    if (last_in == content_type && std::strcmp(last_out, content_type) == 0) return last_out;
    static std::mutex mutex;
    static std::set<std::string, std::less<>> names;
    std::lock_guard lock(mutex);
    auto it = names.emplace(content_type).first;
    last_in = content_type;
    last_out = it->c_str();
    return last_out;
}

} // namespace sluice
