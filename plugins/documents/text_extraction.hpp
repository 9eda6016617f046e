// Text out of documents: HTML through a real HTML5 parser (gumbo), PDF
// through poppler, plain text and Markdown as they are. Each returns the
// text or throws std::runtime_error with the reason.
#pragma once

#include <string>
#include <string_view>

namespace sluice::plugins::documents {

struct ExtractedText {
    std::string text;
    std::string title; // when the document has one
    int pages = 0;     // PDF
};

ExtractedText html_to_text(std::string_view html);
ExtractedText pdf_to_text(std::string_view bytes);
// Invalid UTF-8 sequences replaced by U+FFFD, so records stay valid JSON text.
std::string valid_utf8(std::string_view bytes);

} // namespace sluice::plugins::documents
