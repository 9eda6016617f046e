#include "resume_check.hpp"

#include "stage_harness.hpp"

#include <gtest/gtest.h>

#include <algorithm>

namespace sluice::test {

namespace {

// Records, and failures as "bad:" + message (they come apart from records).
std::vector<std::string> payloads(const Emitted &e) {
    std::vector<std::string> v = e.out();
    for (const auto &f : e.failures) v.push_back("bad:" + f.message);
    return v;
}

} // namespace

void expect_resumes_exactly(const std::string &plugin, const std::string &config, const std::string &base) {
    std::vector<std::string> reference;
    {
        StageHarness h(SLUICE_KIND_EXTRACTOR, plugin, config, base);
        h.start();
        Emitted all = h.pull_all(3);
        ASSERT_EQ(all.status, SLUICE_OK) << all.error;
        reference = payloads(all);
    }
    ASSERT_GT(reference.size(), 3u) << "too little input to cut";
    std::sort(reference.begin(), reference.end());
    for (int cut = 0;; ++cut) {
        std::vector<std::string> got;
        std::string position;
        bool ended = false;
        {
            StageHarness first(SLUICE_KIND_EXTRACTOR, plugin, config, base);
            first.start();
            for (int i = 0; i < cut && !ended; ++i) {
                Emitted e = first.pull(2);
                for (auto &p : payloads(e)) got.push_back(p);
                ended = e.end;
            }
            position = first.position().value();
        }
        StageHarness second(SLUICE_KIND_EXTRACTOR, plugin, config, base);
        if (!position.empty()) second.restore(position);
        second.start();
        for (auto &p : payloads(second.pull_all(2))) got.push_back(p);
        std::sort(got.begin(), got.end());
        EXPECT_EQ(got, reference) << plugin << ": cut after pull " << cut << " at " << position;
        if (ended || ::testing::Test::HasFailure()) break;
    }
}

} // namespace sluice::test
