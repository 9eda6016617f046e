#include "batch.hpp"

#include <cstring>
#include <mutex>
#include <set>
#include <string>

namespace sluice {

namespace {

// Arena chunks of the usual size are kept for the next batch instead of
// freed: a batch is freed on another thread than the one that filled it,
// and malloc, giving that memory back to the system, made every new batch
// fault its pages in again (about 50 ns per record in the emit benchmark).
// At most kMaxPooled chunks wait here (16 MiB); the memory budget counts
// what arenas hold, not this.
class ChunkPool {
public:
    static ChunkPool &global() {
        static ChunkPool *pool = new ChunkPool; // never destroyed: arenas may outlive statics
        return *pool;
    }
    char *take(size_t size) {
        {
            std::lock_guard lock(mutex_);
            if (!free_.empty()) {
                char *p = free_.back();
                free_.pop_back();
                return p;
            }
        }
        return new char[size];
    }
    void give(char *p) {
        {
            std::lock_guard lock(mutex_);
            if (free_.size() < kMaxPooled) {
                free_.push_back(p);
                return;
            }
        }
        delete[] p;
    }

private:
#ifdef __SANITIZE_ADDRESS__
    static constexpr size_t kMaxPooled = 0; // AddressSanitizer must see a batch's bytes freed
#else
    static constexpr size_t kMaxPooled = 256;
#endif
    std::mutex mutex_;
    std::vector<char *> free_;
};

} // namespace

ByteArena::~ByteArena() {
    for (const Chunk &c : chunks_) {
        if (c.size == kChunk) ChunkPool::global().give(c.bytes);
        else delete[] c.bytes;
    }
    MemoryBudget::global().freed(reserved_);
}

// Bytes to skip from `p` to the next multiple of `align` (a power of two:
// a mask, not a division, on this path of every record).
static size_t padding_for(const char *p, size_t align) { return size_t(-reinterpret_cast<uintptr_t>(p)) & (align - 1); }

char *ByteArena::allocate(size_t n, size_t align) {
    size_t pad = cur_ ? padding_for(cur_, align) : 0;
    if (!cur_ || n + pad > left_) {
        size_t size = n + align > kChunk ? n + align : kChunk;
        char *bytes = size == kChunk ? ChunkPool::global().take(kChunk) : new char[size];
        chunks_.push_back(Chunk{bytes, size});
        cur_ = bytes;
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
