// Loader "null": counts records and bytes and discards them. For benchmarks
// and for measuring the cost of the stages in front of it.
#include <sluice/config_spec.hpp>
#include <sluice/plugin.hpp>

#include <atomic>

namespace sluice::plugins {

class NullLoader {
public:
    static constexpr sluice_kind kind = SLUICE_KIND_LOADER;
    static constexpr const char *name = "null";
    static constexpr const char *version = "1.0.0";
    static constexpr const char *description = "Counts records and bytes, then discards them.";
    static constexpr uint64_t capabilities = SLUICE_CAP_CONCURRENT | SLUICE_CAP_READ_ONLY;
    static config::Spec config_spec() { return {}; }

    explicit NullLoader(const Context &ctx) : host_(ctx.host) {}

    void process(Input in, Emitter &) {
        uint64_t bytes = 0;
        for (const auto &r : in) bytes += r.payload_len;
        records_.fetch_add(in.size(), std::memory_order_relaxed);
        bytes_.fetch_add(bytes, std::memory_order_relaxed);
    }
    // sluice.delivery/1: a discarded record is as delivered as it gets.
    bool durable_on_process() const { return true; }
    void flush(Emitter &) {
        host_.counter("records_discarded", int64_t(records_.exchange(0)));
        host_.counter("bytes_discarded", int64_t(bytes_.exchange(0)));
    }

private:
    Host host_;
    std::atomic<uint64_t> records_{0}, bytes_{0};
};

} // namespace sluice::plugins

SLUICE_PLUGIN(sluice::plugins::NullLoader)
