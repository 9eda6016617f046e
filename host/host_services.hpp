// The sluice_host table handed to plugin instances: logging (tagged with the
// stage id), counters, the stop flag and extension lookup.
#pragma once

#include <sluice/plugin.h>

#include <spdlog/common.h>

namespace sluice {

class Stage;

struct HostServices {
    // Fills `host` for `stage` (host_data points at the stage).
    static void fill(sluice_host &host, Stage &stage);
    static spdlog::level::level_enum to_spdlog(sluice_log_level level);
};

} // namespace sluice
