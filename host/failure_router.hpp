// The error path of one stage: what happens to records a call rejected,
// failed or could not deliver. Each failure is counted by reason and logged
// (the first few at warn), then the stage's on_error policy applies:
// dead-letter it (an envelope to the dead-letter stage), skip it, or fail
// the run. Records whose destination failed are never skipped: their
// acknowledgements are poisoned so the next run reads them again.
#pragma once

#include "acknowledgement.hpp"
#include "emitter.hpp"
#include "manifest.hpp"
#include "metrics.hpp"
#include "pipeline_control.hpp"
#include "queue.hpp"

#include <atomic>
#include <memory>
#include <vector>

namespace sluice {

class FailureRouter {
public:
    FailureRouter(const StageSpec &spec, PipelineControl &control, StageMetrics &metrics);

    // Where dead letters go (on_error then: dead_letter).
    void set_dead_letter(std::shared_ptr<BatchQueue> queue) { dead_letter_ = std::move(queue); }
    const std::shared_ptr<BatchQueue> &dead_letter() const { return dead_letter_; }

    // [worker] Applies the policy to `failures` (left after retries);
    // `acks` are the acknowledgements of the batch they came from. False
    // when the pipeline is aborting.
    bool route(const FailureBatch &failures, WorkerCounters &c, const std::vector<AckRef> &acks);

private:
    void log(const Failure &f);

    const StageSpec &spec_;
    PipelineControl &control_;
    StageMetrics &metrics_;
    std::shared_ptr<BatchQueue> dead_letter_;
    std::atomic<uint64_t> logged_{0};
};

} // namespace sluice
