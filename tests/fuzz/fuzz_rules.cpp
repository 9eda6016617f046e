// libFuzzer target: the rules validator's config (its rules and conditions)
// and the records it checks. Input: a config line, then one record a line.
#include "stage_driver.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    std::string config;
    std::vector<std::string> records;
    sluice::fuzz::split_config_and_records(data, size, config, records);
    sluice::fuzz::run_stage(SLUICE_KIND_VALIDATOR, config, records);
    return 0;
}
