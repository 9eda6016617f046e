// Whether a model's answer is what was asked for.
#pragma once

#include <boost/json.hpp>

#include <string>

namespace sluice::plugins::llm {

// The answer's text as JSON (a Markdown code fence around it is tolerated),
// checked against `schema` (null: any JSON). Returns the problem in one line,
// or "" with `out` set.
std::string parse_answer(const std::string &content, const boost::json::value &schema, boost::json::value &out);

} // namespace sluice::plugins::llm
