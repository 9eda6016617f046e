// The pipeline's memory budget (manifest "memory_limit_mb"). Every byte a
// batch holds, wherever it is (a queue, a reorder buffer, a worker), is
// counted where it is allocated (payload arenas and record arrays) and given
// back when freed. Extractors wait before reading more while the budget is
// spent, and size their pulls to a fraction of it; every stage downstream
// drains without waiting, so the wait cannot deadlock and memory stays near
// the budget whatever the input size, batch size or thread counts.
// One per process: the host runs one pipeline at a time.
#pragma once

#include "pipeline_control.hpp"

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <mutex>
#include <new>

namespace sluice {

class MemoryBudget {
public:
    static MemoryBudget &global();

    void set_limit(uint64_t bytes) { limit_.store(bytes ? bytes : UINT64_MAX, std::memory_order_relaxed); }
    uint64_t limit() const { return limit_.load(std::memory_order_relaxed); }
    uint64_t used() const { return uint64_t(std::max<int64_t>(0, used_.load(std::memory_order_relaxed))); }
    uint64_t peak() const { return uint64_t(peak_.load(std::memory_order_relaxed)); }
    void reset_peak() { peak_.store(used_.load(std::memory_order_relaxed), std::memory_order_relaxed); }

    void allocated(size_t bytes) {
        int64_t now = used_.fetch_add(int64_t(bytes), std::memory_order_relaxed) + int64_t(bytes);
        int64_t p = peak_.load(std::memory_order_relaxed);
        while (now > p && !peak_.compare_exchange_weak(p, now, std::memory_order_relaxed)) {}
    }
    void freed(size_t bytes) {
        int64_t now = used_.fetch_sub(int64_t(bytes), std::memory_order_relaxed) - int64_t(bytes);
        // Wake waiting extractors only when this free makes room.
        if (now < int64_t(limit()) && now + int64_t(bytes) >= int64_t(limit())) {
            std::lock_guard lock(mutex_);
            room_.notify_all();
        }
    }

    // [extractor worker] Waits while the budget is spent. False when the run
    // stops or aborts first.
    bool wait_for_room(const PipelineControl &control);
    // The most bytes one pull should produce: a slice of the budget, so that
    // many batches fit in it at once.
    uint64_t batch_bytes() const;

private:
    std::atomic<uint64_t> limit_{UINT64_MAX};
    std::atomic<int64_t> used_{0}, peak_{0};
    std::mutex mutex_;
    std::condition_variable room_;
};

// A std::allocator that counts what it holds against the budget (for the
// record arrays of batches).
template <class T>
struct MeteredAllocator {
    using value_type = T;
    MeteredAllocator() = default;
    template <class U> MeteredAllocator(const MeteredAllocator<U> &) {}
    T *allocate(size_t n) {
        MemoryBudget::global().allocated(n * sizeof(T));
        return std::allocator<T>().allocate(n);
    }
    void deallocate(T *p, size_t n) {
        std::allocator<T>().deallocate(p, n);
        MemoryBudget::global().freed(n * sizeof(T));
    }
    template <class U> bool operator==(const MeteredAllocator<U> &) const { return true; }
};

} // namespace sluice
