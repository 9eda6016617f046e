// The offline text enricher: language, addresses, links, phones, dates, counts.
#include "stage_harness.hpp"

#include <boost/json.hpp>
#include <gtest/gtest.h>

using namespace sluice;
using namespace sluice::test;
namespace bj = boost::json;

namespace {

bj::object info_of(const std::string &payload, const std::string &config = "{}") {
    StageHarness h(SLUICE_KIND_ENRICHER, "text", config);
    h.start();
    Emitted e = h.process({payload});
    EXPECT_EQ(e.status, SLUICE_OK) << e.error;
    if (e.out().size() != 1) {
        ADD_FAILURE() << "no output";
        return {};
    }
    return bj::parse(e.out()[0]).as_object();
}

} // namespace

TEST(TextEnricher, FindsLanguageAddressesLinksPhonesDatesAndCounts) {
    bj::object r = info_of(R"({"id":1,"text":"Hello, please contact Jane.Doe@Example.com or visit https://example.com/help. )"
                           R"(Call +1 (555) 123-4567 before March 5, 2024 or on 2024-03-07."})");
    const bj::object &i = r.at("text_info").as_object();
    EXPECT_EQ(i.at("language"), "en");
    EXPECT_EQ(i.at("emails"), bj::array{"jane.doe@example.com"});
    EXPECT_EQ(i.at("urls"), bj::array{"https://example.com/help"}) << "without the full stop after it";
    EXPECT_EQ(i.at("phones"), bj::array{"+1 (555) 123-4567"}) << "and not the ISO date";
    EXPECT_EQ(i.at("dates"), (bj::array{"2024-03-07", "2024-03-05"}));
    EXPECT_EQ(i.at("words").as_int64(), 24);
    EXPECT_EQ(r.at("id").as_int64(), 1) << "the record itself is kept";

    bj::object de = info_of(R"({"text":"Guten Tag, bitte rufen Sie uns unter 030 1234567 an. Die Lieferung kommt am 14.03.2024."})");
    EXPECT_EQ(de.at("text_info").at("language"), "de");
    EXPECT_EQ(de.at("text_info").at("dates"), bj::array{"14.03.2024"}) << "day/month order unknown: kept as written";
    EXPECT_EQ(de.at("text_info").at("characters").as_int64(), 87);
}

TEST(TextEnricher, ShortOrMissingTextAndChosenFields) {
    EXPECT_EQ(info_of(R"({"text":"ok"})").at("text_info").at("language"), nullptr) << "too short to tell";
    // No field to read: passed on unchanged.
    StageHarness h(SLUICE_KIND_ENRICHER, "text", "{}");
    h.start();
    Emitted e = h.process({R"({"title":"x"})"});
    EXPECT_EQ(e.out(), std::vector<std::string>{R"({"title":"x"})"});
    // Several fields, a chosen output field, only some findings.
    bj::object r = info_of(R"({"subject":"Order 7","body":"Mail me at a@b.io","n":3})",
                           R"({"fields":["subject","body","n"],"output_field":"facts","extract":["emails","counts"]})");
    const bj::object &f = r.at("facts").as_object();
    EXPECT_EQ(f.size(), 3u) << bj::serialize(f);
    EXPECT_EQ(f.at("emails"), bj::array{"a@b.io"});
    EXPECT_EQ(f.at("words").as_int64(), 8) << "Order 7 Mail me at a b io: n is not text";
}

TEST(TextEnricher, ConfigMistakesAreOneLine) {
    EXPECT_EQ(StageHarness::create_error(SLUICE_KIND_ENRICHER, "text", R"({"fields":[]})"),
              "fields: name at least one field to read");
    EXPECT_EQ(StageHarness::create_error(SLUICE_KIND_ENRICHER, "text", R"({"extract":["colour"]})"),
              "extract[0]: \"colour\" is not one of \"language\", \"emails\", \"urls\", \"phones\", \"dates\", "
              "\"counts\"");
}
