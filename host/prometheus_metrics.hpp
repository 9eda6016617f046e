// The pipeline's metrics in the Prometheus text format, for the admin
// endpoint's /metrics. Built from the counters the stages keep anyway
// (relaxed atomics, read here): a scrape costs the pipeline nothing, and
// prometheus-cpp owns the names, the types and the exposition format.
//
//   sluice_stage_records_total{pipeline,stage,plugin,outcome}  in, out, rejected, failed,
//                                                              dead_lettered, unaccounted, filtered, dropped
//   sluice_stage_batches_total, sluice_stage_busy_seconds_total, sluice_stage_retries_total
//   sluice_stage_call_duration_seconds (histogram)             one plugin call = one batch
//   sluice_stage_queue_batches, sluice_stage_queue_capacity_batches
//   sluice_stage_worker_threads, sluice_stage_worker_restarts_total, sluice_stage_worker_crashes_total{cause},
//   sluice_stage_poison_records_total
//   sluice_plugin_<name>[_total]{pipeline,stage,plugin[,label]} every metric a plugin declares
//                                                              (sluice.metrics/1); a counter named
//                                                              "base{key=value}" becomes base{key="value"}
//   sluice_pipeline_up, process_resident_memory_bytes, process_cpu_seconds_total,
//   process_start_time_seconds
#pragma once

#include <string>

namespace sluice {

class Pipeline;

std::string prometheus_text(const Pipeline &pipeline);

// A name made of what Prometheus allows ([a-zA-Z0-9_], not starting with a
// digit): anything else becomes '_'.
std::string prometheus_name(std::string_view name);

} // namespace sluice
