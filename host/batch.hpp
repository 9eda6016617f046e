// Batches: the unit that crosses queues and the plugin ABI. A batch is a
// vector of sluice_record views plus the storage their bytes live in.
// Records forwarded unchanged from one batch to the next keep pointing at the
// bytes of the batch they came from; the new batch holds a reference to that
// storage instead of copying (no per-record allocation or copy).
#pragma once

#include "acknowledgement.hpp"
#include "memory_budget.hpp"

#include <sluice/plugin.h>

#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

namespace sluice {

// Append-only byte storage in large chunks: one chunk per ~64 KiB of
// payload, not one allocation per record. Chunks of the usual size come
// from, and go back to, a process-wide pool (see batch.cpp).
class ByteArena {
public:
    ByteArena() = default;
    ~ByteArena();
    ByteArena(const ByteArena &) = delete;
    ByteArena &operator=(const ByteArena &) = delete;

    char *allocate(size_t n, size_t align = 1); // align: a power of two
    const char *copy(std::string_view bytes);
    size_t bytes_reserved() const { return reserved_; }

private:
    static constexpr size_t kChunk = 64 * 1024;
    struct Chunk {
        char *bytes;
        size_t size;
    };
    std::vector<Chunk> chunks_;
    char *cur_ = nullptr;
    size_t left_ = 0;
    size_t reserved_ = 0;
};

// The bytes of one batch's records, and the storage of the batches whose
// records it forwarded. Shared, immutable once the batch is published.
struct BatchStorage {
    ByteArena arena;
    std::vector<std::shared_ptr<const BatchStorage>> parents;
};

struct Batch {
    uint64_t seq = 0; // extraction order, for stages that want ordered input
    std::vector<sluice_record, MeteredAllocator<sluice_record>> records; // counted against the memory budget
    std::shared_ptr<BatchStorage> storage = std::make_shared<BatchStorage>();
    // The extractor pulls its records came from: acknowledged once every
    // copy of every batch carrying them is gone (see acknowledgement.hpp).
    std::vector<AckRef> acks;

    size_t size() const { return records.size(); }
    bool empty() const { return records.empty(); }
    // Keeps `other`'s bytes alive as long as this batch (once per source).
    void keep(const std::shared_ptr<BatchStorage> &other);
};

// Interns content type strings so records can point at them for ever.
// NULL and "application/json" both become NULL (the JSON default).
const char *intern_content_type(const char *content_type);

} // namespace sluice
