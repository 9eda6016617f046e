// Extractor "generate": N synthetic records, the same for the same seed
// whatever the thread count. For tests, demos and benchmarks.
#include "../common/json_text.hpp"

#include <sluice/config_spec.hpp>
#include <sluice/json.hpp>
#include <sluice/plugin.hpp>

#include <algorithm>
#include <array>
#include <cstdlib>
#include <cstdio>

namespace sluice::plugins {

namespace {

// splitmix64: a fast, well-mixed hash of (seed, index), so record i does
// not depend on which worker makes it or in what order.
uint64_t mix(uint64_t x) {
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

constexpr std::array<const char *, 16> kFirst = {"ada", "alan", "grace", "linus", "ken", "dennis", "barbara", "edsger",
                                                 "margaret", "donald", "frances", "john", "radia", "tim", "sophie", "guido"};
constexpr std::array<const char *, 12> kCountries = {"US", "DE", "FR", "GB", "NL", "SE", "JP", "BR", "IN", "CA", "ES", "IT"};
constexpr std::array<const char *, 24> kWords = {"order",   "shipped", "late",    "customer", "refund", "great",
                                                 "service", "package", "damaged", "thanks",   "quick",  "support",
                                                 "price",   "quality", "return",  "again",    "never",  "always",
                                                 "box",     "arrived", "fast",    "slow",     "good",   "item"};

// Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm).
void civil_from_days(int64_t z, int &y, unsigned &m, unsigned &d) {
    z += 719468;
    const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    const unsigned doe = unsigned(z - era * 146097);
    const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    const int64_t yy = int64_t(yoe) + era * 400;
    const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    const unsigned mp = (5 * doy + 2) / 153;
    d = doy - (153 * mp + 2) / 5 + 1;
    m = mp < 10 ? mp + 3 : mp - 9;
    y = int(yy + (m <= 2));
}

} // namespace

class Generate {
public:
    static constexpr sluice_kind kind = SLUICE_KIND_EXTRACTOR;
    static constexpr const char *name = "generate";
    static constexpr const char *version = "1.0.0";
    static constexpr const char *description =
        "Produces N deterministic synthetic order records (id, timestamp, user, email, amount, country, text).";
    static config::Spec config_spec() {
        using config::Field;
        return {
            Field::integer("count", "How many records to produce").required().minimum(0),
            Field::integer("seed", "Same seed, same records").minimum(0).default_to(1),
            Field::integer("invalid_every",
                           "Make every Nth record break typical rules (bad email, negative amount); 0 for never")
                .minimum(0)
                .default_to(0),
            Field::integer("start_time", "Unix time of the first record's timestamp (records are one second apart)")
                .default_to(1767225600),
        };
    }

    explicit Generate(const Context &ctx) : worker_(ctx.worker_index), workers_(ctx.worker_count) {
        json::Config c(ctx.config_json);
        count_ = uint64_t(std::max<int64_t>(0, c.integer("count")));
        seed_ = uint64_t(c.integer("seed"));
        invalid_every_ = uint64_t(std::max<int64_t>(0, c.integer("invalid_every")));
        start_time_ = c.integer("start_time");
        next_ = worker_;
    }

    bool pull(Emitter &out, uint32_t max_records) {
        for (uint32_t n = 0; n < max_records && next_ < count_; ++n, next_ += workers_) {
            make(next_);
            out.emit_new(buf_);
        }
        return next_ >= count_;
    }
    // sluice.checkpoint/1: the index of the next record this worker makes.
    std::string checkpoint() const { return json::PositionWriter().count("next", next_).text(); }
    void restore(std::string_view position) {
        json::SavedPosition saved(position);
        if (!saved.find("next")) saved.fail("no \"next\"");
        uint64_t next = saved.count("next");
        if (next % workers_ != worker_) saved.fail("it belongs to another worker (the stage's threads changed?)");
        next_ = next;
    }

private:
    void make(uint64_t i) {
        uint64_t h = mix(seed_ ^ mix(i));
        bool invalid = invalid_every_ && (i + 1) % invalid_every_ == 0;
        const char *first = kFirst[h % kFirst.size()];
        unsigned user_no = unsigned((h >> 8) % 10000);
        int64_t cents = int64_t((h >> 20) % 100000);
        if (invalid) cents = -cents - 1;
        const char *country = kCountries[(h >> 40) % kCountries.size()];
        int64_t t = start_time_ + int64_t(i);
        int64_t days = t >= 0 ? t / 86400 : (t - 86399) / 86400;
        int64_t secs = t - days * 86400;
        int y;
        unsigned mo, d;
        civil_from_days(days, y, mo, d);

        buf_.clear();
        buf_ += "{\"id\":";
        append_uint(buf_, i + 1);
        char ts[40];
        int len = std::snprintf(ts, sizeof ts, "%04d-%02u-%02uT%02d:%02d:%02dZ", y, mo, d, int(secs / 3600),
                                int(secs / 60 % 60), int(secs % 60));
        buf_ += ",\"timestamp\":\"";
        buf_.append(ts, size_t(len));
        buf_ += "\",\"user\":\"";
        buf_ += first;
        append_uint(buf_, user_no);
        buf_ += "\",\"email\":\"";
        buf_ += first;
        append_uint(buf_, user_no);
        buf_ += invalid ? "-at-example.com\"" : "@example.com\"";
        char amount[32];
        len = std::snprintf(amount, sizeof amount, "%s%lld.%02lld", cents < 0 ? "-" : "",
                            (long long)(std::llabs(cents) / 100), (long long)(std::llabs(cents) % 100));
        buf_ += ",\"amount\":";
        buf_.append(amount, size_t(len));
        buf_ += ",\"country\":\"";
        buf_ += country;
        buf_ += "\",\"text\":\"";
        uint64_t w = mix(h);
        for (int k = 0; k < 10; ++k, w = mix(w)) {
            if (k) buf_ += ' ';
            buf_ += kWords[w % kWords.size()];
        }
        buf_ += "\"}";
    }

    uint32_t worker_, workers_;
    uint64_t count_ = 0, seed_ = 1, invalid_every_ = 0;
    int64_t start_time_ = 0;
    uint64_t next_;
    std::string buf_;
};

} // namespace sluice::plugins

SLUICE_PLUGIN(sluice::plugins::Generate)
