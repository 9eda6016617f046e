#include "logging.hpp"

#include "secret_redactor.hpp"

#include <sluice/json.hpp>
#include <sluice/utc_time.hpp>

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/base_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <cstdio>
#include <mutex>

namespace sluice {

namespace {

std::atomic<bool> g_progress_shown{false};
std::mutex g_stage_plugins_mutex;
std::map<std::string, std::string> g_stage_plugins;

// Clears the progress line before a log line, then hands the line to the
// real sink.
class ProgressAwareSink : public spdlog::sinks::base_sink<std::mutex> {
public:
    explicit ProgressAwareSink(std::shared_ptr<spdlog::sinks::sink> inner) : inner_(std::move(inner)) {}

protected:
    void sink_it_(const spdlog::details::log_msg &msg) override {
        if (g_progress_shown.load(std::memory_order_relaxed)) {
            std::fputs("\r\033[K", stderr);
        }
        if (SecretRedactor::global().empty()) {
            inner_->log(msg);
            return;
        }
        // A secret's value never reaches a log line, at any level.
        const std::string text =
            SecretRedactor::global().redact(std::string_view(msg.payload.data(), msg.payload.size()));
        spdlog::details::log_msg copy = msg;
        copy.payload = spdlog::string_view_t(text.data(), text.size());
        inner_->log(copy);
    }
    void flush_() override { inner_->flush(); }
    void set_pattern_(const std::string &pattern) override { inner_->set_pattern(pattern); }
    void set_formatter_(std::unique_ptr<spdlog::formatter> f) override { inner_->set_formatter(std::move(f)); }

private:
    std::shared_ptr<spdlog::sinks::sink> inner_;
};

class JsonFormatter : public spdlog::formatter {
public:
    void format(const spdlog::details::log_msg &msg, spdlog::memory_buf_t &dest) override {
        auto level = spdlog::level::to_string_view(msg.level);
        std::string line = json_log_line(utc_time_ms(msg.time), std::string(level.data(), level.size()),
                                         std::string(msg.payload.data(), msg.payload.size()));
        line += '\n';
        dest.append(line.data(), line.data() + line.size());
    }
    std::unique_ptr<spdlog::formatter> clone() const override { return std::make_unique<JsonFormatter>(); }

private:
    static std::string utc_time_ms(spdlog::log_clock::time_point t) {
        using namespace std::chrono;
        auto ms = duration_cast<milliseconds>(t.time_since_epoch()).count() % 1000;
        std::string s = utc_time(time_point_cast<system_clock::duration>(t)); // "...:SSZ"
        char frac[8];
        std::snprintf(frac, sizeof frac, ".%03d", int(ms));
        s.insert(s.size() - 1, frac);
        return s;
    }
};

} // namespace

std::string json_log_line(const std::string &time, const std::string &level, const std::string &message) {
    std::string_view text = message, stage;
    if (text.size() > 2 && text[0] == '[') {
        if (size_t close = text.find("] "); close != std::string_view::npos && close > 1) {
            stage = text.substr(1, close - 1);
            text.remove_prefix(close + 2);
        }
    }
    std::string out = "{\"time\":";
    json::append_string(out, time);
    out += ",\"level\":";
    json::append_string(out, level);
    if (!stage.empty()) {
        out += ",\"stage\":";
        json::append_string_lossy(out, stage);
        std::lock_guard lock(g_stage_plugins_mutex);
        if (auto it = g_stage_plugins.find(std::string(stage)); it != g_stage_plugins.end()) {
            out += ",\"plugin\":";
            json::append_string_lossy(out, it->second);
        }
    }
    for (size_t at = text.find("record "); at != std::string_view::npos; at = text.find("record ", at + 1)) {
        size_t digits = at + 7, end = digits;
        while (end < text.size() && std::isdigit(static_cast<unsigned char>(text[end]))) ++end;
        const bool word_start = at == 0 || !std::isalpha(static_cast<unsigned char>(text[at - 1]));
        if (end > digits && word_start) {
            out += ",\"record\":";
            out.append(text.substr(digits, end - digits));
            break;
        }
    }
    out += ",\"message\":";
    json::append_string_lossy(out, text);
    return out + "}";
}

bool setup_logging(const std::string &level, const std::string &format) {
    auto lvl = spdlog::level::from_str(level);
    if (lvl == spdlog::level::off && level != "off") return false;
    if (format != "text" && format != "json") return false;
    auto sink = std::make_shared<ProgressAwareSink>(std::make_shared<spdlog::sinks::stderr_color_sink_mt>());
    auto logger = std::make_shared<spdlog::logger>("sluice", sink);
    if (format == "json") {
        sink->set_formatter(std::make_unique<JsonFormatter>());
    } else {
        sink->set_pattern("%Y-%m-%d %H:%M:%S.%e %^%-5l%$ %v");
    }
    logger->set_level(lvl);
    logger->flush_on(spdlog::level::warn);
    spdlog::drop("sluice");
    spdlog::register_logger(logger);
    spdlog::set_default_logger(logger);
    return true;
}

std::optional<std::string> log_level_names_if_invalid(const std::string &level) {
    auto lvl = spdlog::level::from_str(level);
    if (lvl == spdlog::level::off && level != "off") return "trace, debug, info, warn, error, off";
    return std::nullopt;
}

void set_log_stage_plugins(std::map<std::string, std::string> stage_plugins) {
    std::lock_guard lock(g_stage_plugins_mutex);
    g_stage_plugins = std::move(stage_plugins);
}

void set_progress_line_shown(bool shown) { g_progress_shown.store(shown, std::memory_order_relaxed); }

} // namespace sluice
