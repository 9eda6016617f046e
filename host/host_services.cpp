#include "host_services.hpp"

#include "emitter.hpp"
#include "stage.hpp"

#include <spdlog/spdlog.h>

#include <string_view>

namespace sluice {

namespace {

Stage &stage_of(const sluice_host *h) { return *static_cast<Stage *>(h->host_data); }

void host_log(const sluice_host *h, sluice_log_level level, const char *message, size_t len) {
    if (!h || !message) return;
    spdlog::log(HostServices::to_spdlog(level), "[{}] {}", stage_of(h).id(), std::string_view(message, len));
}

int32_t host_log_enabled(const sluice_host *, sluice_log_level level) {
    return spdlog::should_log(HostServices::to_spdlog(level)) ? 1 : 0;
}

void host_counter_add(const sluice_host *h, const char *name, int64_t delta) {
    if (!h || !name || !*name) return;
    stage_of(h).metrics().counter_add(name, delta);
}

const void *host_get_extension(const sluice_host *, const char *id) {
    if (id && std::string_view(id) == SLUICE_EXT_DROP) return BatchEmitter::drop_extension();
    return nullptr;
}

} // namespace

spdlog::level::level_enum HostServices::to_spdlog(sluice_log_level level) {
    switch (level) {
    case SLUICE_LOG_TRACE: return spdlog::level::trace;
    case SLUICE_LOG_DEBUG: return spdlog::level::debug;
    case SLUICE_LOG_INFO: return spdlog::level::info;
    case SLUICE_LOG_WARN: return spdlog::level::warn;
    default: return spdlog::level::err;
    }
}

void HostServices::fill(sluice_host &host, Stage &stage) {
    host.struct_size = sizeof(sluice_host);
    host.abi_major = SLUICE_ABI_MAJOR;
    host.abi_minor = SLUICE_ABI_MINOR;
    host.host_data = &stage;
    host.log = &host_log;
    host.log_enabled = &host_log_enabled;
    host.counter_add = &host_counter_add;
    host.stop_requested = [](const sluice_host *h) -> int32_t {
        return stage_of(h).control_.stop_requested() ? 1 : 0;
    };
    host.get_extension = &host_get_extension;
}

} // namespace sluice
