// The lost-record check the end-to-end tests run on every report must itself
// catch a lost record.
#include "record_accounting.hpp"

#include <gtest/gtest.h>

using namespace sluice::test;
namespace bj = boost::json;

namespace {

bj::object stage(const char *id, const char *kind, bj::array inputs, uint64_t in, bj::object outputs, uint64_t out = 0,
                 uint64_t rejected = 0, uint64_t errors = 0, uint64_t dead = 0, const char *policy = "skip") {
    return bj::object{{"id", id},         {"kind", kind},          {"inputs", std::move(inputs)},
                      {"in", in},         {"out", out},            {"rejected", rejected},
                      {"errors", errors}, {"dead_lettered", dead}, {"outputs", std::move(outputs)},
                      {"on_error", policy}};
}

bj::object report(uint64_t loaded) {
    bj::object gate = stage("gate", "validator", {"src"}, 100, {{"pass", 90}, {"fail", 10}}, 90, 10);
    bj::object dl = stage("map", "transformer", {"gate.pass"}, 90, {{"out", 88}}, 88, 0, 2, 2, "dead_letter");
    dl["dead_letter_to"] = "dlq";
    return bj::object{{"stages", bj::array{stage("src", "extractor", {}, 100, {{"out", 100}}, 100), gate, dl,
                                           stage("good", "loader", {"map"}, 88, {}, loaded),
                                           stage("bad", "loader", {"gate.fail"}, 10, {}, 10),
                                           stage("dlq", "loader", {}, 2, {}, 2)}}};
}

} // namespace

TEST(RecordAccounting, ABalancedReportPasses) { EXPECT_TRUE(unaccounted_records(report(88)).empty()); }

TEST(RecordAccounting, ARecordLostAnywhereIsCaught) {
    EXPECT_EQ(unaccounted_records(report(87)),
              (std::vector<std::string>{"stage 'good': received 88 but loaded 87 + rejected 0 + failed 0"}));
    bj::object r = report(88);
    r["stages"].as_array()[5].as_object()["in"] = 1; // a dead letter went missing
    auto problems = unaccounted_records(r);
    ASSERT_FALSE(problems.empty());
    EXPECT_EQ(problems.back(), "stage 'dlq': received 1 records but was sent 2");
}
