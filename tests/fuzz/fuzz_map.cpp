// libFuzzer target: the map transformer, which edits records as text
// (copying the fields it does not touch byte for byte). Input: a config
// line, then one record a line. Beyond not crashing: when a record is valid
// JSON, what map makes of it is valid JSON too.
#include "stage_driver.hpp"

#include <boost/json.hpp>

#include <cstdlib>

namespace {

bool valid_json(std::string_view text) {
    boost::system::error_code ec;
    boost::json::parse(text, ec);
    return !ec;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    std::string config;
    std::vector<std::string> records;
    sluice::fuzz::split_config_and_records(data, size, config, records);
    sluice::fuzz::run_stage(SLUICE_KIND_TRANSFORMER, config, records,
                            [](const sluice::Batch &in, const std::vector<sluice::Batch> &outputs,
                               const sluice::FailureBatch &) {
                                for (const sluice_record &r : outputs[0].records) {
                                    // Outputs carry their input's id (the batch's index here).
                                    std::string_view input(in.records[r.id].payload, in.records[r.id].payload_len);
                                    std::string_view output(r.payload, r.payload_len);
                                    if (valid_json(input) && !valid_json(output)) std::abort();
                                }
                            });
    return 0;
}
