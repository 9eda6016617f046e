// A host table whose services do nothing, for driving a plugin stage
// without a pipeline (instance tests, fuzz targets, micro-benchmarks).
// Extensions: sluice.drop/1 only, served by the host's own emitter.
#pragma once

#include "emitter.hpp"

#include <sluice/plugin.h>

#include <string_view>

namespace sluice::test {

// `format_logs`: say every log level is enabled, so that plugins format
// their messages (fuzz targets exercise that code too).
inline const sluice_host *quiet_host(bool format_logs = false) {
    static auto make = [](bool enabled) {
        sluice_host h{};
        h.struct_size = sizeof h;
        h.abi_major = SLUICE_ABI_MAJOR;
        h.abi_minor = SLUICE_ABI_MINOR;
        h.host_data = enabled ? reinterpret_cast<void *>(1) : nullptr;
        h.log = [](const sluice_host *, sluice_log_level, const char *, size_t) {};
        h.log_enabled = [](const sluice_host *self, sluice_log_level) -> int32_t { return self->host_data ? 1 : 0; };
        h.counter_add = [](const sluice_host *, const char *, int64_t) {};
        h.stop_requested = [](const sluice_host *) -> int32_t { return 0; };
        h.get_extension = [](const sluice_host *, const char *id) -> const void * {
            return std::string_view(id) == SLUICE_EXT_DROP ? BatchEmitter::drop_extension() : nullptr;
        };
        return h;
    };
    static const sluice_host quiet = make(false), formatting = make(true);
    return format_logs ? &formatting : &quiet;
}

} // namespace sluice::test
