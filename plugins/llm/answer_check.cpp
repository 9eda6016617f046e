#include "answer_check.hpp"

#include <sluice/json_schema.hpp>

#include <cctype>

namespace sluice::plugins::llm {

namespace bj = boost::json;

std::string parse_answer(const std::string &content, const bj::value &schema, bj::value &out) {
    std::string_view text(content);
    while (!text.empty() && std::isspace(static_cast<unsigned char>(text.front()))) text.remove_prefix(1);
    while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) text.remove_suffix(1);
    // Models often wrap JSON in a Markdown code fence.
    if (text.substr(0, 3) == "```") {
        size_t nl = text.find('\n');
        text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
        if (size_t end = text.rfind("```"); end != std::string_view::npos) text = text.substr(0, end);
    }
    boost::system::error_code ec;
    out = bj::parse(text, ec);
    if (ec) return "the answer is not valid JSON (" + ec.message() + ")";
    if (schema.is_null()) return {};
    std::vector<std::string> problems = json::check_schema(out, schema, "");
    if (problems.empty()) return {};
    std::string all;
    for (size_t i = 0; i < problems.size() && i < 5; ++i) all += (i ? "; " : "") + problems[i];
    return "the answer does not match the schema: " + all;
}

} // namespace sluice::plugins::llm
