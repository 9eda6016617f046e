#include "prompt_template.hpp"

#include <stdexcept>

namespace sluice::plugins::llm {

namespace bj = boost::json;

PromptTemplate::PromptTemplate(const std::string &text) {
    size_t pos = 0;
    while (pos < text.size()) {
        size_t open = text.find("{{", pos);
        if (open == std::string::npos) {
            parts_.push_back({text.substr(pos), false, {}});
            break;
        }
        if (open > pos) parts_.push_back({text.substr(pos, open - pos), false, {}});
        size_t close = text.find("}}", open + 2);
        if (close == std::string::npos)
            throw std::invalid_argument("'{{' at character " + std::to_string(open) + " has no closing '}}'");
        std::string name = text.substr(open + 2, close - open - 2);
        while (!name.empty() && name.front() == ' ') name.erase(0, 1);
        while (!name.empty() && name.back() == ' ') name.pop_back();
        if (name.empty()) throw std::invalid_argument("empty placeholder '{{}}' at character " + std::to_string(open));
        Part p{name, true, {}};
        for (size_t s = 0, dot; s <= name.size(); s = dot + 1) {
            dot = name.find('.', s);
            if (dot == std::string::npos) dot = name.size();
            p.path.push_back(name.substr(s, dot - s));
        }
        parts_.push_back(std::move(p));
        pos = close + 2;
    }
}

std::string PromptTemplate::render(const bj::object &record) const { return render(record, bj::serialize(record)); }

std::string PromptTemplate::render(const bj::object &record, const std::string &record_json) const {
    std::string out;
    for (const Part &p : parts_) {
        if (!p.placeholder) {
            out += p.text;
            continue;
        }
        if (p.text == "record") {
            out += record_json;
            continue;
        }
        const bj::value *v = nullptr;
        const bj::object *o = &record;
        for (const std::string &key : p.path) {
            v = o ? o->if_contains(key) : nullptr;
            if (!v) break;
            o = v->if_object();
        }
        if (!v || v->is_null()) continue;
        if (v->is_string()) out += std::string(v->get_string());
        else out += bj::serialize(*v);
    }
    return out;
}

} // namespace sluice::plugins::llm
