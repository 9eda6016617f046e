#include "progress_line.hpp"

#include "logging.hpp"
#include "pipeline.hpp"
#include "stage.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <cstdio>
#include <set>

namespace sluice {

namespace {

std::string elapsed(double seconds) {
    const auto s = uint64_t(seconds);
    return s >= 3600 ? fmt::format("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
                     : fmt::format("{}:{:02}", s / 60, s % 60);
}

} // namespace

ProgressLine::ProgressLine(const Pipeline &pipeline, Mode mode, std::chrono::milliseconds summary_interval)
    : pipeline_(pipeline), mode_(mode),
      interval_(mode == Mode::terminal ? std::chrono::milliseconds(500) : summary_interval) {
    thread_ = std::thread([this] { loop(); });
}

ProgressLine::~ProgressLine() {
    {
        std::lock_guard lock(mutex_);
        stop_ = true;
    }
    wake_.notify_all();
    thread_.join();
    if (drawn_) {
        set_progress_line_shown(false);
        std::fputs("\r\033[K", stderr);
        std::fflush(stderr);
    }
}

ProgressLine::Reading ProgressLine::read(const Pipeline &pipeline, double seconds) {
    Reading r;
    r.seconds = seconds;
    auto reading = pipeline.read_lock(); // not while a reload swaps a stage's plugin
    const std::set<std::string> dead_letter_stages = pipeline.dead_letter_stages();
    for (const auto &s : pipeline.stages()) {
        StageTotals t = s->metrics().totals();
        if (s->kind() == SLUICE_KIND_EXTRACTOR) r.extracted += t.in;
        if (s->kind() == SLUICE_KIND_LOADER && !dead_letter_stages.count(s->id())) r.loaded += t.out;
        r.rejected += t.rejected;
        r.failed += t.errors;
        r.busy_seconds[s->id()] = t.busy_seconds;
    }
    return r;
}

std::string ProgressLine::render(const Reading &now, const Reading &before) {
    const double dt = now.seconds - before.seconds;
    const double rate = dt > 0 ? double(now.extracted - before.extracted) / dt : 0;
    std::string busiest;
    double most = 0;
    for (const auto &[stage, busy] : now.busy_seconds) {
        auto it = before.busy_seconds.find(stage);
        const double used = busy - (it == before.busy_seconds.end() ? 0 : it->second);
        if (used > most) {
            most = used;
            busiest = stage;
        }
    }
    std::string line = fmt::format("{} elapsed, {} extracted, {} loaded, {} rejected, {} failed, {:.0f} records/s",
                                   elapsed(now.seconds), now.extracted, now.loaded, now.rejected, now.failed, rate);
    if (!busiest.empty()) line += ", busiest: " + busiest;
    return line;
}

void ProgressLine::loop() {
    const auto start = std::chrono::steady_clock::now();
    auto seconds = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(); };
    Reading before = read(pipeline_, 0);
    std::unique_lock lock(mutex_);
    while (!wake_.wait_for(lock, interval_, [this] { return stop_; })) {
        if (pipeline_.phase() != Pipeline::Phase::running) continue;
        Reading now = read(pipeline_, seconds());
        std::string line = render(now, before);
        before = std::move(now);
        if (mode_ == Mode::terminal) {
            set_progress_line_shown(true);
            drawn_ = true;
            std::fprintf(stderr, "\r\033[K%s", line.c_str());
            std::fflush(stderr);
        } else {
            spdlog::info("progress: {}", line);
        }
    }
}

} // namespace sluice
