#include "config_table.hpp"

#include <fmt/format.h>

#include <algorithm>

namespace sluice {

namespace bj = boost::json;

namespace {

std::string type_of(const bj::object &prop) {
    if (const bj::value *e = prop.if_contains("enum"); e && e->is_array()) {
        std::string out;
        for (const auto &option : e->get_array())
            out += (out.empty() ? "" : ", ") + std::string("`") +
                   (option.is_string() ? std::string(option.get_string()) : bj::serialize(option)) + "`";
        return out;
    }
    const bj::value *t = prop.if_contains("type");
    if (!t) return "any";
    if (t->is_string()) {
        std::string s(t->get_string());
        if (s == "array")
            if (const bj::value *items = prop.if_contains("items"); items && items->is_object()) {
                const bj::object &it = items->get_object();
                if (it.contains("properties")) return "array of objects";
                if (const bj::value *t2 = it.if_contains("type"); t2 && t2->is_string())
                    return "array of " + std::string(t2->get_string()) + "s";
            }
        if (s == "object")
            if (const bj::value *a = prop.if_contains("additionalProperties"); a && a->is_object())
                if (const bj::value *t2 = a->get_object().if_contains("type"); t2 && t2->is_string())
                    return "object of " + std::string(t2->get_string()) + "s";
        return s;
    }
    std::string out;
    if (t->is_array())
        for (const auto &e : t->get_array())
            if (e.is_string()) out += (out.empty() ? "" : " or ") + std::string(e.get_string());
    return out.empty() ? "any" : out;
}

std::string default_of(const bj::value &d) {
    if (d.is_string()) return d.get_string().empty() ? "\"\"" : std::string(d.get_string());
    return bj::serialize(d);
}

void add_rows(const bj::object &schema, const std::string &prefix, std::vector<ConfigRow> &rows) {
    const bj::value *props = schema.if_contains("properties");
    if (!props || !props->is_object()) return;
    std::vector<std::string> required;
    if (const bj::value *r = schema.if_contains("required"); r && r->is_array())
        for (const auto &e : r->get_array())
            if (e.is_string()) required.emplace_back(e.get_string());
    for (const auto &kv : props->get_object()) {
        if (!kv.value().is_object()) continue;
        const bj::object &p = kv.value().get_object();
        ConfigRow row;
        row.key = prefix + std::string(kv.key());
        row.type = type_of(p);
        if (std::find(required.begin(), required.end(), std::string(kv.key())) != required.end())
            row.default_text = "required";
        else if (const bj::value *d = p.if_contains("default"); d && !(d->is_object() && d->get_object().empty()))
            row.default_text = default_of(*d);
        if (const bj::value *d = p.if_contains("description"); d && d->is_string()) row.meaning = d->get_string();
        if (const bj::value *m = p.if_contains("minimum")) row.bounds = "at least " + bj::serialize(*m);
        if (const bj::value *m = p.if_contains("maximum"))
            row.bounds += (row.bounds.empty() ? "" : ", ") + std::string("at most ") + bj::serialize(*m);
        const bj::value *secret = p.if_contains("secret");
        row.secret = secret && secret->is_bool() && secret->get_bool();
        rows.push_back(std::move(row));
        add_rows(p, prefix + std::string(kv.key()) + ".", rows);
        if (const bj::value *items = p.if_contains("items"); items && items->is_object())
            add_rows(items->get_object(), prefix + std::string(kv.key()) + "[].", rows);
    }
}

std::string markdown_cell(std::string s) {
    std::string out;
    for (char c : s) {
        if (c == '|') out += "\\|";
        else if (c == '\n') out += ' ';
        else out += c;
    }
    return out;
}

} // namespace

std::vector<ConfigRow> config_rows(const bj::value &schema) {
    std::vector<ConfigRow> rows;
    if (schema.is_object()) add_rows(schema.get_object(), "", rows);
    return rows;
}

std::string config_rows_text(const std::vector<ConfigRow> &rows, const std::string &indent) {
    size_t width = 0;
    for (const auto &r : rows) width = std::max(width, r.key.size());
    std::string out;
    for (const auto &r : rows) {
        std::string notes = r.default_text == "required" ? "required"
                            : r.default_text.empty()     ? ""
                                                         : "default " + r.default_text;
        if (!r.bounds.empty()) notes += (notes.empty() ? "" : "; ") + r.bounds;
        if (r.secret) notes += (notes.empty() ? "" : "; ") + std::string("secret");
        std::string type = r.type;
        type.erase(std::remove(type.begin(), type.end(), '`'), type.end());
        out += fmt::format("{}{:<{}}  {:<16} {}{}\n", indent, r.key, width, type, r.meaning,
                           notes.empty() ? "" : " (" + notes + ")");
    }
    return out;
}

std::string config_rows_markdown(const std::vector<ConfigRow> &rows) {
    std::string out = "| key | type | default | meaning |\n|---|---|---|---|\n";
    for (const auto &r : rows) {
        std::string def = r.default_text.empty() || r.default_text == "required" ? r.default_text
                                                                                 : "`" + r.default_text + "`";
        out += fmt::format("| `{}` | {}{} | {} | {} |\n", r.key, markdown_cell(r.type), r.secret ? " (secret)" : "",
                           markdown_cell(def),
                           markdown_cell(r.bounds.empty() ? r.meaning : r.meaning + " (" + r.bounds + ")"));
    }
    return out;
}

} // namespace sluice
