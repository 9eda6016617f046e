// libFuzzer target: the route transformer's config (its conditions) and the
// records it routes. Input: a config line, then one record a line.
#include "stage_driver.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    std::string config;
    std::vector<std::string> records;
    sluice::fuzz::split_config_and_records(data, size, config, records);
    sluice::fuzz::run_stage(SLUICE_KIND_TRANSFORMER, config, records);
    return 0;
}
