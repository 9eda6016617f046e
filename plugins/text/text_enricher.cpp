#include "text_enricher.hpp"

#include <textcat.h>

#include <algorithm>
#include <cstring>

namespace sluice::plugins {

namespace bj = boost::json;

namespace {

// Widely written languages; textcat knows many more (Scots, Frisian ...),
// which otherwise win too often on short English or German text.
const char *const kDefaultLanguages[] = {"en", "de", "fr", "es", "it", "pt", "nl", "sv", "da", "nb", "no", "fi",
                                         "pl", "cs", "sk", "hu", "ro", "bg", "ru", "uk", "el", "tr", "ar", "he",
                                         "fa", "hi", "bn", "ja", "zh", "ko", "vi", "th", "id", "ms", "ca", "hr",
                                         "sr", "sl", "lt", "lv", "et"};

const char *const kMonths[] = {"jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"};

int month_number(std::string_view name) {
    std::string m;
    for (size_t i = 0; i < name.size() && i < 3; ++i) m += char(std::tolower(static_cast<unsigned char>(name[i])));
    for (int i = 0; i < 12; ++i)
        if (m == kMonths[i]) return i + 1;
    return 0;
}

std::string iso(int y, int m, int d) {
    char buf[16];
    std::snprintf(buf, sizeof buf, "%04d-%02d-%02d", y, m, d);
    return buf;
}

bool valid_date(int y, int m, int d) { return y >= 1000 && y <= 9999 && m >= 1 && m <= 12 && d >= 1 && d <= 31; }

size_t utf8_length(std::string_view s) {
    size_t n = 0;
    for (unsigned char c : s) n += (c & 0xC0) != 0x80;
    return n;
}

std::unique_ptr<RE2> compile(const char *pattern) {
    RE2::Options o;
    o.set_encoding(RE2::Options::EncodingUTF8);
    o.set_case_sensitive(false);
    o.set_log_errors(false);
    auto re = std::make_unique<RE2>(pattern, o);
    if (!re->ok()) throw FatalError(std::string("bad built-in pattern: ") + re->error());
    return re;
}

} // namespace

TextEnricher::TextEnricher(const Context &ctx) : host_(ctx.host) {
    json::Config c(ctx.config_json);
    fields_ = c.strings("fields");
    if (fields_.empty()) c.fail("fields", "name at least one field to read");
    output_field_ = c.string("output_field");
    {
        language_ = emails_ = urls_ = phones_ = dates_ = counts_ = false;
        for (const std::string &e : c.strings("extract")) {
            if (e == "language") language_ = true;
            else if (e == "emails") emails_ = true;
            else if (e == "urls") urls_ = true;
            else if (e == "phones") phones_ = true;
            else if (e == "dates") dates_ = true;
            else if (e == "counts") counts_ = true;
            else c.fail("extract", "unknown '" + e + "' (expected language, emails, urls, phones, dates or counts)");
        }
    }
    if (c.has("languages")) {
        for (const std::string &l : c.strings("languages")) languages_.insert(l);
    } else {
        languages_.insert(std::begin(kDefaultLanguages), std::end(kDefaultLanguages));
    }
    min_language_chars_ = size_t(c.integer("min_language_chars"));
    models_dir_ = c.string("language_models");
    email_ = compile(R"(([a-z0-9._%+-]+@[a-z0-9-]+(?:\.[a-z0-9-]+)*\.[a-z]{2,}))");
    url_ = compile(R"(((?:https?|ftp)://[^\s<>"'()\[\]]+))");
    phone_ = compile(R"((\+?\(?\d[\d ().-]{5,}\d))");
    iso_date_ = compile(R"(\b(\d{4})-(\d{2})-(\d{2})\b)");
    numeric_date_ = compile(R"(\b(\d{1,2}[./]\d{1,2}[./]\d{4})\b)");
    month_day_year_ = compile(
        R"(\b(jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\.? (\d{1,2})(?:st|nd|rd|th)?,? (\d{4})\b)");
    day_month_year_ = compile(
        R"(\b(\d{1,2})(?:st|nd|rd|th)?\.? (jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\.?,? (\d{4})\b)");
    word_ = compile(R"([\pL\pN]+(?:['’-][\pL\pN]+)*)");
}

TextEnricher::~TextEnricher() {
    if (textcat_) textcat_Done(textcat_);
}

void TextEnricher::start() {
    if (!language_) return;
    std::string dir = models_dir_.empty() || models_dir_.back() == '/' ? models_dir_ : models_dir_ + "/";
    std::string conf = dir + "fpdb.conf";
    textcat_ = special_textcat_Init(conf.c_str(), dir.c_str());
    if (!textcat_) throw Error("language_models: cannot load " + conf + " and its models (is libexttextcat-data installed?)");
}

std::string TextEnricher::language_of(std::string_view text) {
    if (utf8_length(text) < min_language_chars_) return {};
    // Addresses, links, digits and punctuation say nothing of the language
    // and make the n-gram guess fail: only words go in. A couple of
    // thousand bytes are enough to tell, and cost far less.
    std::string sample(text.substr(0, 4000));
    RE2::GlobalReplace(&sample, *url_, " ");
    RE2::GlobalReplace(&sample, *email_, " ");
    std::string words;
    for (char c : sample) {
        unsigned char u = static_cast<unsigned char>(c);
        if (u >= 0x80 || std::isalpha(u)) words += c;
        else if (!words.empty() && words.back() != ' ') words += ' ';
    }
    if (words.size() > 2000) words.resize(2000);
    const char *result = textcat_Classify(textcat_, words.data(), words.size());
    if (!result || result[0] != '[') return {}; // SHORT or UNKNOWN
    // "[sco--utf8][en--utf8]": candidates, best first.
    for (const char *p = result; (p = std::strchr(p, '[')) != nullptr;) {
        const char *end = std::strchr(p, ']');
        if (!end) break;
        std::string code(p + 1, end);
        code = code.substr(0, code.find('-'));
        if (languages_.count(code)) return code;
        p = end;
    }
    return {};
}

bj::object TextEnricher::analyse(std::string_view text) {
    bj::object out;
    re2::StringPiece input(text.data(), text.size()), match;
    auto all = [&](const RE2 &re, auto &&keep) {
        bj::array found;
        re2::StringPiece rest = input, m;
        while (RE2::FindAndConsume(&rest, re, &m)) {
            std::string s(m.data(), m.size());
            if (keep(s) && std::find(found.begin(), found.end(), bj::value(s)) == found.end()) found.push_back(bj::value(s));
        }
        return found;
    };
    if (language_) {
        std::string lang = language_of(text);
        out["language"] = lang.empty() ? bj::value(nullptr) : bj::value(lang);
    }
    if (emails_) out["emails"] = all(*email_, [](std::string &s) {
        for (char &c : s) c = char(std::tolower(static_cast<unsigned char>(c)));
        return true;
    });
    if (urls_) out["urls"] = all(*url_, [](std::string &s) {
        while (!s.empty() && std::strchr(".,;:!?", s.back())) s.pop_back(); // sentence punctuation
        return !s.empty();
    });
    if (phones_) out["phones"] = all(*phone_, [](std::string &s) {
        size_t digits = size_t(std::count_if(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; }));
        // 7 to 15 digits (E.164), and not a date or a plain decimal number.
        if (digits < 7 || digits > 15) return false;
        if (s.find_first_of(" ()-+") == std::string::npos) return false;
        // 2024-03-07 and 2024-03-07 12 are dates, not numbers to call.
        static const RE2 date_like(R"(\d{4}-\d{2}-\d{2}.*)");
        return !RE2::FullMatch(s, date_like);
    });
    if (dates_) {
        bj::array dates;
        auto add = [&](const std::string &d) {
            if (std::find(dates.begin(), dates.end(), bj::value(d)) == dates.end()) dates.push_back(bj::value(d));
        };
        re2::StringPiece rest = input;
        std::string y, m, d, mon;
        while (RE2::FindAndConsume(&rest, *iso_date_, &y, &m, &d))
            if (valid_date(std::stoi(y), std::stoi(m), std::stoi(d))) add(iso(std::stoi(y), std::stoi(m), std::stoi(d)));
        rest = input;
        while (RE2::FindAndConsume(&rest, *month_day_year_, &mon, &d, &y))
            if (valid_date(std::stoi(y), month_number(mon), std::stoi(d))) add(iso(std::stoi(y), month_number(mon), std::stoi(d)));
        rest = input;
        while (RE2::FindAndConsume(&rest, *day_month_year_, &d, &mon, &y))
            if (valid_date(std::stoi(y), month_number(mon), std::stoi(d))) add(iso(std::stoi(y), month_number(mon), std::stoi(d)));
        // 03/04/2024 is April or March depending on the writer: kept as written.
        rest = input;
        while (RE2::FindAndConsume(&rest, *numeric_date_, &d)) add(d);
        out["dates"] = std::move(dates);
    }
    if (counts_) {
        int64_t words = 0;
        re2::StringPiece rest = input;
        while (RE2::FindAndConsume(&rest, *word_)) ++words;
        out["words"] = words;
        out["characters"] = int64_t(utf8_length(text));
    }
    return out;
}

void TextEnricher::process(Input in, Emitter &out) {
    std::string error, text;
    for (uint32_t i = 0; i < in.size(); ++i) {
        ++received_;
        if (!in[i].is_json()) {
            out.fail(i, "text: the record is not JSON (" + std::string(in[i].content_type()) + ")");
            continue;
        }
        bj::object *record = parser_.parse_object(in[i].payload(), error);
        if (!record) {
            out.fail(i, "text: " + error);
            continue;
        }
        text.clear();
        bool any = false;
        for (const std::string &f : fields_) {
            const bj::value *v = record->if_contains(f);
            if (!v || !v->is_string()) continue;
            if (any) text += '\n';
            text.append(v->get_string().data(), v->get_string().size());
            any = true;
        }
        if (!any) { // nothing to read: passed on as it is
            out.forward(i);
            continue;
        }
        ++with_text_;
        (*record)[output_field_] = analyse(text);
        out.replace(0, i, in[i].raw(), writer_.write(*record));
    }
}

void TextEnricher::flush(Emitter &) {
    host_.counter("received", received_);
    host_.counter("enriched", with_text_);
}

} // namespace sluice::plugins

SLUICE_PLUGIN(sluice::plugins::TextEnricher)
