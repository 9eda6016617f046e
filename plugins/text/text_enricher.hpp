// Enricher "text": offline facts about the text in chosen fields: language
// (libexttextcat), e-mail addresses, URLs, phone numbers and dates (RE2),
// word and character counts. No network, no model. See README.md.
#pragma once

#include <sluice/json.hpp>
#include <sluice/config_spec.hpp>
#include <sluice/plugin.hpp>

#include <re2/re2.h>

#include <memory>
#include <set>
#include <string>
#include <vector>

namespace sluice::plugins {

class TextEnricher {
public:
    static constexpr sluice_kind kind = SLUICE_KIND_ENRICHER;
    static constexpr const char *name = "text";
    static constexpr const char *version = "1.0.0";
    static constexpr const char *description =
        "Adds the language, e-mail addresses, URLs, phone numbers, dates and word/character counts found in text "
        "fields (offline).";
    static config::Spec config_spec() {
        using config::Field;
        return {
            Field::custom("fields", R"({"type": "array", "items": {"type": "string", "minLength": 1}})",
                          "Fields to read, joined by line breaks; missing or non-string fields are skipped, and a "
                          "record with none of them is passed on unchanged")
                .default_to(boost::json::array{"text"}),
            Field::string("output_field", "Field the findings go under").not_empty().default_to("text_info"),
            Field::custom("extract",
                          R"({"type": "array", "items": {"type": "string", "enum": ["language", "emails", "urls",
                              "phones", "dates", "counts"]}})",
                          "What to find: any of language, emails, urls, phones, dates, counts")
                .default_to(boost::json::array{"language", "emails", "urls", "phones", "dates", "counts"}),
            Field::strings("languages", "ISO 639-1 codes the detector may answer (default: about 40 widely written "
                                        "languages); its best-scoring candidate among them wins"),
            Field::integer("min_language_chars", "Shorter text gets language null (too little to tell)")
                .minimum(1)
                .default_to(20),
            Field::string("language_models", "Directory of libexttextcat's fpdb.conf and language models (Debian "
                                             "package libexttextcat-data)")
                .default_to("/usr/share/libexttextcat"),
        };
    }

    explicit TextEnricher(const Context &ctx);
    ~TextEnricher();
    void start();
    void process(Input in, Emitter &out);
    void flush(Emitter &out);

    // The findings for `text` as a JSON object (public for tests).
    boost::json::object analyse(std::string_view text);

private:
    std::string language_of(std::string_view text);

    Host host_;
    std::vector<std::string> fields_;
    std::string output_field_;
    bool language_ = true, emails_ = true, urls_ = true, phones_ = true, dates_ = true, counts_ = true;
    std::set<std::string> languages_;
    size_t min_language_chars_ = 20;
    std::string models_dir_;
    void *textcat_ = nullptr;
    std::unique_ptr<RE2> email_, url_, phone_, iso_date_, numeric_date_, month_day_year_, day_month_year_, word_;
    json::RecordParser parser_;
    json::RecordWriter writer_;
    int64_t received_ = 0, with_text_ = 0;
};

} // namespace sluice::plugins
