// Exactly-once delivery (sluice.exactly_once/1). The marker a destination
// stores atomically with each batch says which extractor pulls it holds: for
// each worker of its one extractor, the number of the last pull whose
// records it has made durable (pull numbers count across runs, see
// AckToken::pull). Batches reach such a destination in extraction order, so
// holding pull p of a worker means holding every earlier pull of it too.
// After a crash the extractor reads again from the saved state, which may lie
// behind the destination's marker; the pulls the marker covers are skipped
// instead of written twice.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sluice {

class PullMarker {
public:
    PullMarker(std::string extractor, std::vector<uint64_t> pulls)
        : extractor_(std::move(extractor)), pulls_(std::move(pulls)) {}

    // Reads a marker this class wrote; nothing (with `problem`) otherwise.
    static std::optional<PullMarker> parse(std::string_view text, std::string &problem);
    std::string text() const; // {"extractor":"read","pulls":[12,7]}

    const std::string &extractor() const { return extractor_; }
    const std::vector<uint64_t> &pulls() const { return pulls_; }
    // Whether pull `pull` of `worker` is in the destination already.
    bool holds(uint32_t worker, uint64_t pull) const { return worker < pulls_.size() && pull <= pulls_[worker]; }
    void add(uint32_t worker, uint64_t pull) {
        if (worker >= pulls_.size()) pulls_.resize(worker + 1, 0);
        if (pull > pulls_[worker]) pulls_[worker] = pull;
    }

private:
    std::string extractor_;
    std::vector<uint64_t> pulls_;
};

} // namespace sluice
