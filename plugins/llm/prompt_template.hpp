// A prompt with placeholders filled from a record: {{record}} is the whole
// record as JSON, {{name}} or {{a.b}} a field (strings as they are, other
// values as JSON, missing fields as nothing).
#pragma once

#include <boost/json.hpp>

#include <string>
#include <vector>

namespace sluice::plugins::llm {

class PromptTemplate {
public:
    explicit PromptTemplate(const std::string &text); // throws std::invalid_argument on "{{" without "}}"
    std::string render(const boost::json::object &record) const;
    std::string render(const boost::json::object &record, const std::string &record_json) const;

private:
    struct Part {
        std::string text;               // literal, or a placeholder name
        bool placeholder = false;
        std::vector<std::string> path;  // for a field: the dotted path
    };
    std::vector<Part> parts_;
};

} // namespace sluice::plugins::llm
