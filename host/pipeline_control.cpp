#include "pipeline_control.hpp"

namespace sluice {

void PipelineControl::request_stop() {
    {
        std::lock_guard lock(mutex_);
        stop_ = true;
    }
    wake_.notify_all();
}

void PipelineControl::fail(const std::string &message) {
    {
        std::lock_guard lock(mutex_);
        if (!failed_ && !aborted_) abort_message_ = message;
        failed_ = true;
        stop_ = true;
    }
    wake_.notify_all();
}

void PipelineControl::abort(const std::string &message) {
    std::function<void()> fn;
    {
        std::lock_guard lock(mutex_);
        if (aborted_) return;
        aborted_ = true;
        stop_ = true;
        if (!failed_) abort_message_ = message;
        fn = on_abort_;
    }
    wake_.notify_all();
    if (fn) fn();
}

std::string PipelineControl::abort_message() const {
    std::lock_guard lock(mutex_);
    return abort_message_;
}

bool PipelineControl::sleep_for(std::chrono::milliseconds d, bool wake_on_stop) {
    std::unique_lock lock(mutex_);
    return !wake_.wait_for(lock, d, [&] { return (wake_on_stop && stop_) || aborted_; });
}

} // namespace sluice
