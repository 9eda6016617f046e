// The fastest floor for the benchmark: the bench job (rename user ->
// user_id, drop text, add "source":"bench") done by one thread with
// simdjson On-Demand, no DOM: each kept field's raw text is copied, the
// renamed key written, the new field appended.
//
//   floor_text_edit INPUT.ndjson > OUTPUT.ndjson
#include "line_source.hpp"

#include <simdjson.h>

#include <cstdio>

namespace od = simdjson::ondemand;

namespace {

// The raw text of a key (escapes kept) between its quotes.
std::string_view raw_key(const od::raw_json_string &key) {
    const char *p = key.raw();
    size_t n = 0;
    while (p[n] != '"') n += p[n] == '\\' ? 2 : 1;
    return {p, n};
}

// The text of a value as written (trailing blanks included for scalars).
simdjson::simdjson_result<std::string_view> raw_value(od::value &v) {
    od::json_type type;
    if (auto error = v.type().get(type)) return error;
    if (type == od::json_type::object) {
        od::object o;
        if (auto error = v.get_object().get(o)) return error;
        return o.raw_json();
    }
    if (type == od::json_type::array) {
        od::array a;
        if (auto error = v.get_array().get(a)) return error;
        return a.raw_json();
    }
    return v.raw_json_token();
}

} // namespace

int main(int argc, char **argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: floor_text_edit INPUT.ndjson\n");
        return 2;
    }
    std::FILE *in = std::fopen(argv[1], "rb");
    if (!in) {
        std::perror(argv[1]);
        return 1;
    }
    LineSource lines(in, simdjson::SIMDJSON_PADDING);
    BlockWriter out(stdout);
    od::parser parser;
    size_t bad = 0;
    for (std::string_view line; lines.next(line);) {
        if (line.empty()) continue;
        size_t mark = out.text().size();
        auto fail = [&] {
            out.text().resize(mark);
            ++bad;
        };
        od::document doc;
        od::object obj;
        if (parser.iterate(line.data(), line.size(), line.size() + simdjson::SIMDJSON_PADDING).get(doc) ||
            doc.get_object().get(obj)) {
            fail();
            continue;
        }
        out.append('{');
        bool first = true, ok = true;
        for (auto member : obj) {
            od::field field;
            std::string_view value;
            if (std::move(member).get(field) || raw_value(field.value()).get(value)) {
                ok = false;
                break;
            }
            std::string_view key = raw_key(field.key());
            if (key == "text") continue;
            if (!first) out.append(',');
            first = false;
            out.append('"');
            out.append(key == "user" ? std::string_view("user_id") : key);
            out.append("\":");
            while (!value.empty() && (value.back() == ' ' || value.back() == '\t' || value.back() == '\r'))
                value.remove_suffix(1);
            out.append(value);
        }
        if (!ok) {
            fail();
            continue;
        }
        out.append(first ? "\"source\":\"bench\"}" : ",\"source\":\"bench\"}");
        out.end_line();
    }
    out.flush();
    if (bad) std::fprintf(stderr, "floor_text_edit: %zu lines were not JSON objects\n", bad);
    return 0;
}
