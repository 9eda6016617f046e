// Test plugins for flow control and faults. One library, so the source and
// the sink share counters (plugin globals are allowed; they are synchronised).
//  - extractor probe_source: `count` records {"n": i}, optional sleep per pull
//  - loader probe_sink: optional sleep per batch; records the most records
//    ever in flight (produced - consumed) as counter "max_in_flight", and
//    its process calls ("calls") and the most records in one ("max_call_records");
//    probe_commit_sink, the same taking commit windows
//  - transformer fault: fails on chosen records: {"fail_every": N} rejects via
//    fail(), {"fatal_at": N} returns SLUICE_FATAL at the batch holding record
//    N, {"throw_at": N} throws (the helper turns it into SLUICE_ERROR);
//    {"fail_times": K} with fail_every: a chosen record fails K tries, then passes;
//    {"hang_at": ID, "hang_ms": T} sleeps T ms in the batch holding record ID;
//    {"slow_ms": T} sleeps T ms in every batch.
//    {"spin_ms": T} burns T ms of CPU in every batch.
//  - loader settling_sink: commits each call's records only during the next
//    call or at settle (sluice.settle/1), appending them to `path` then;
//    {"fail_commit_of_call": K} makes the commit of call K fail after that
//    call returned (reported by the next call or by settle).
#include <sluice/json.hpp>
#include <sluice/plugin.hpp>

#include <algorithm>
#include <atomic>
#include <map>
#include <chrono>
#include <stdexcept>
#include <cstdio>
#include <ctime>
#include <string>
#include <thread>

namespace {

std::atomic<int64_t> produced{0}, consumed{0}, max_in_flight{0};

class ProbeSource {
public:
    static constexpr sluice_kind kind = SLUICE_KIND_EXTRACTOR;
    static constexpr const char *name = "probe_source";
    static constexpr const char *version = "1.0.0";
    static constexpr const char *description = "test: counted records";
    static constexpr const char *config_schema =
        R"json({"type":"object","properties":{"count":{"type":"integer"},"pull_delay_ms":{"type":"integer"}}})json";

    explicit ProbeSource(const sluice::Context &ctx) : host_(ctx.host) {
        sluice::json::Config c(ctx.config_json);
        count_ = c.integer("count", 1000);
        delay_ = c.integer("pull_delay_ms", 0);
    }
    bool pull(sluice::Emitter &out, uint32_t max) {
        if (delay_) std::this_thread::sleep_for(std::chrono::milliseconds(delay_));
        uint32_t n = 0;
        for (; n < max && next_ < count_; ++n, ++next_) {
            std::string s = "{\"n\":" + std::to_string(next_) + "}";
            out.emit_new(s);
        }
        produced.fetch_add(n);
        return next_ >= count_;
    }

private:
    sluice::Host host_;
    int64_t count_, delay_, next_ = 0;
};

class ProbeSink {
public:
    static constexpr sluice_kind kind = SLUICE_KIND_LOADER;
    static constexpr const char *name = "probe_sink";
    static constexpr const char *version = "1.0.0";
    static constexpr const char *description = "test: slow counting sink";
    static constexpr const char *config_schema =
        R"json({"type":"object","properties":{"batch_delay_ms":{"type":"integer"},"durable":{"type":"boolean"},
                "token":{"type":"string","secret":true},"reveal":{"type":"boolean"}}})json";

    explicit ProbeSink(const sluice::Context &ctx) : host_(ctx.host) {
        sluice::json::Config c(ctx.config_json);
        delay_ = c.integer("batch_delay_ms", 0);
        durable_ = c.boolean("durable", false);
        // A careless plugin: with reveal, it says its secret at every level
        // and in its create error; the host must keep it out of sight.
        if (c.boolean("reveal", false)) {
            std::string token = c.string("token");
            for (auto level : {SLUICE_LOG_DEBUG, SLUICE_LOG_INFO, SLUICE_LOG_WARN, SLUICE_LOG_ERROR})
                host_.log(level, "my token is " + token);
            if (ctx.worker_index == 0 && token.find("fail") != std::string::npos)
                throw sluice::Error("token: '" + token + "' was refused");
        }
    }
    // Whether records count as delivered once process returns (they are
    // only counted, so it is the test's choice).
    bool durable_on_process() const { return durable_; }
    void process(sluice::Input in, sluice::Emitter &) {
        int64_t in_flight = produced.load() - consumed.load();
        int64_t seen = max_in_flight.load();
        while (in_flight > seen && !max_in_flight.compare_exchange_weak(seen, in_flight)) {}
        if (delay_) std::this_thread::sleep_for(std::chrono::milliseconds(delay_));
        consumed.fetch_add(in.size());
        ++calls_;
        max_call_ = std::max<int64_t>(max_call_, in.size());
    }
    void flush(sluice::Emitter &) {
        host_.counter("max_in_flight", max_in_flight.load());
        host_.counter("calls", calls_);
        host_.counter("max_call_records", max_call_);
    }

private:
    sluice::Host host_;
    int64_t delay_;
    bool durable_;
    int64_t calls_ = 0, max_call_ = 0; // process calls, the most records in one
};

class Fault {
public:
    static constexpr sluice_kind kind = SLUICE_KIND_TRANSFORMER;
    static constexpr const char *name = "fault";
    static constexpr const char *version = "1.0.0";
    static constexpr const char *description = "test: fails on chosen records";
    static constexpr const char *config_schema =
        R"json({"type":"object","properties":{"fail_every":{"type":"integer"},"fail_times":{"type":"integer"},"fatal_at":{"type":"integer"},"throw_at":{"type":"integer"},"hang_at":{"type":"integer"},"hang_ms":{"type":"integer"},"slow_ms":{"type":"integer"},"spin_ms":{"type":"integer"}}})json";

    explicit Fault(const sluice::Context &ctx) {
        sluice::json::Config c(ctx.config_json);
        fail_every_ = c.integer("fail_every", 0);
        fail_times_ = c.integer("fail_times", 0);
        fatal_at_ = c.integer("fatal_at", -1);
        throw_at_ = c.integer("throw_at", -1);
        hang_at_ = c.integer("hang_at", -1);
        hang_ms_ = c.integer("hang_ms", 10000);
        slow_ms_ = c.integer("slow_ms", 0);
        spin_ms_ = c.integer("spin_ms", 0);
    }
    void process(sluice::Input in, sluice::Emitter &out) {
        for (uint32_t i = 0; i < in.size(); ++i) {
            int64_t at = seen_++;
            if (at == fatal_at_) throw sluice::FatalError("injected fatal error at record " + std::to_string(at));
            if (at == throw_at_) throw std::runtime_error("injected exception at record " + std::to_string(at));
            // By record id, so that a replacement instance does not hang again.
            if (int64_t(in[i].id()) == hang_at_) std::this_thread::sleep_for(std::chrono::milliseconds(hang_ms_));
        }
        if (slow_ms_) std::this_thread::sleep_for(std::chrono::milliseconds(slow_ms_));
        if (spin_ms_) { // this thread's CPU, not wall time: the same under load
            timespec start{}, now{};
            clock_gettime(CLOCK_THREAD_CPUTIME_ID, &start);
            volatile uint64_t sink = 0;
            do {
                for (int k = 0; k < 10000; ++k) sink = sink + uint64_t(k);
                clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now);
            } while ((now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000 < spin_ms_);
        }
        for (uint32_t i = 0; i < in.size(); ++i) {
            uint64_t id = in[i].id();
            // fail_times: a chosen record fails its first N tries, then passes.
            bool chosen = fail_every_ && id % uint64_t(fail_every_) == 0;
            if (chosen && (fail_times_ == 0 || tries_[id]++ < fail_times_)) out.fail(i, "injected failure");
            else out.forward(i);
        }
    }

private:
    int64_t fail_every_, fail_times_, fatal_at_, throw_at_, hang_at_, hang_ms_, slow_ms_, spin_ms_, seen_ = 0;
    std::map<uint64_t, int64_t> tries_;
};

} // namespace

// The same sink as one whose calls each cost a commit: the host joins
// batches waiting for it into one call (commit windows).
class ProbeCommitSink : public ProbeSink {
public:
    static constexpr const char *name = "probe_commit_sink";
    static constexpr const char *description = "test: slow counting sink that takes commit windows";
    static constexpr uint64_t capabilities = SLUICE_CAP_COMMIT_WINDOWS;
    using ProbeSink::ProbeSink;
};

// A loader whose commit of one call runs during the next (a database COMMIT
// sent without waiting): what a call accepted reaches `path` only when the
// next call or settle commits it.
class SettlingSink {
public:
    static constexpr sluice_kind kind = SLUICE_KIND_LOADER;
    static constexpr const char *name = "settling_sink";
    static constexpr const char *version = "1.0.0";
    static constexpr const char *description = "test: commits each call's records during the next call or settle";
    static constexpr const char *config_schema =
        R"json({"type":"object","properties":{"path":{"type":"string"},"fail_commit_of_call":{"type":"integer"}},
                "required":["path"]})json";

    explicit SettlingSink(const sluice::Context &ctx) {
        sluice::json::Config c(ctx.config_json);
        path_ = ctx.resolve_path(c.string("path"));
        fail_at_ = c.integer("fail_commit_of_call", -1);
    }
    bool durable_on_process() const { return true; }
    void process(sluice::Input in, sluice::Emitter &) {
        settle();
        ++calls_;
        for (uint32_t i = 0; i < in.size(); ++i) accepted_ += std::string(in[i].payload()) + "\n";
    }
    void settle() {
        if (calls_ == fail_at_ && !accepted_.empty())
            throw sluice::FatalError("the commit of call " + std::to_string(calls_) + " failed");
        if (accepted_.empty()) return;
        std::FILE *f = std::fopen(path_.c_str(), "a");
        if (!f) throw sluice::FatalError("cannot open " + path_);
        const bool ok = std::fwrite(accepted_.data(), 1, accepted_.size(), f) == accepted_.size();
        if (std::fclose(f) != 0 || !ok) throw sluice::FatalError("cannot write " + path_);
        accepted_.clear();
    }

private:
    std::string path_, accepted_;
    int64_t fail_at_, calls_ = 0;
};

SLUICE_PLUGIN(ProbeSource, ProbeSink, ProbeCommitSink, Fault, SettlingSink)
