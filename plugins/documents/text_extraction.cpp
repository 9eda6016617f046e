#include "text_extraction.hpp"

#include <gumbo.h>
#include <poppler/cpp/poppler-document.h>
#include <poppler/cpp/poppler-page.h>

#include <memory>
#include <stdexcept>

namespace sluice::plugins::documents {

namespace {

bool is_block(GumboTag t) {
    switch (t) {
    case GUMBO_TAG_P: case GUMBO_TAG_DIV: case GUMBO_TAG_BR: case GUMBO_TAG_LI: case GUMBO_TAG_TR:
    case GUMBO_TAG_H1: case GUMBO_TAG_H2: case GUMBO_TAG_H3: case GUMBO_TAG_H4: case GUMBO_TAG_H5:
    case GUMBO_TAG_H6: case GUMBO_TAG_TABLE: case GUMBO_TAG_UL: case GUMBO_TAG_OL: case GUMBO_TAG_PRE:
    case GUMBO_TAG_BLOCKQUOTE: case GUMBO_TAG_SECTION: case GUMBO_TAG_ARTICLE: case GUMBO_TAG_HEADER:
    case GUMBO_TAG_FOOTER: case GUMBO_TAG_HR: case GUMBO_TAG_TITLE:
        return true;
    default:
        return false;
    }
}

void newline(std::string &out) {
    while (!out.empty() && out.back() == ' ') out.pop_back();
    if (!out.empty() && out.back() != '\n') out += '\n';
}

// Visible text: scripts, styles and the head's metadata left out; white
// space collapsed; block elements on lines of their own.
void collect(const GumboNode *node, std::string &out) {
    if (node->type == GUMBO_NODE_TEXT || node->type == GUMBO_NODE_WHITESPACE || node->type == GUMBO_NODE_CDATA) {
        for (const char *p = node->v.text.text; *p; ++p) {
            char c = *p;
            if (c == ' ' || c == '\n' || c == '\t' || c == '\r') {
                if (!out.empty() && out.back() != ' ' && out.back() != '\n') out += ' ';
            } else {
                out += c;
            }
        }
        return;
    }
    if (node->type != GUMBO_NODE_ELEMENT && node->type != GUMBO_NODE_DOCUMENT) return;
    const GumboVector *children = node->type == GUMBO_NODE_ELEMENT ? &node->v.element.children : &node->v.document.children;
    if (node->type == GUMBO_NODE_ELEMENT) {
        GumboTag t = node->v.element.tag;
        if (t == GUMBO_TAG_SCRIPT || t == GUMBO_TAG_STYLE || t == GUMBO_TAG_NOSCRIPT || t == GUMBO_TAG_TEMPLATE ||
            t == GUMBO_TAG_HEAD)
            return;
        if (is_block(t)) newline(out);
    }
    for (unsigned i = 0; i < children->length; ++i) collect(static_cast<const GumboNode *>(children->data[i]), out);
    if (node->type == GUMBO_NODE_ELEMENT && is_block(node->v.element.tag)) newline(out);
}

const GumboNode *find(const GumboNode *node, GumboTag tag) {
    if (node->type == GUMBO_NODE_ELEMENT && node->v.element.tag == tag) return node;
    const GumboVector *children = node->type == GUMBO_NODE_ELEMENT    ? &node->v.element.children
                                  : node->type == GUMBO_NODE_DOCUMENT ? &node->v.document.children
                                                                      : nullptr;
    if (!children) return nullptr;
    for (unsigned i = 0; i < children->length; ++i)
        if (const GumboNode *f = find(static_cast<const GumboNode *>(children->data[i]), tag)) return f;
    return nullptr;
}

std::string trim(std::string s) {
    size_t a = s.find_first_not_of(" \n\r\t\f"), b = s.find_last_not_of(" \n\r\t\f");
    return a == std::string::npos ? std::string() : s.substr(a, b - a + 1);
}

} // namespace

ExtractedText html_to_text(std::string_view html) {
    std::unique_ptr<GumboOutput, void (*)(GumboOutput *)> doc(
        gumbo_parse_with_options(&kGumboDefaultOptions, html.data(), html.size()),
        [](GumboOutput *o) { gumbo_destroy_output(&kGumboDefaultOptions, o); });
    if (!doc) throw std::runtime_error("the HTML parser failed");
    ExtractedText r;
    if (const GumboNode *title = find(doc->root, GUMBO_TAG_TITLE)) {
        std::string t;
        for (unsigned i = 0; i < title->v.element.children.length; ++i)
            collect(static_cast<const GumboNode *>(title->v.element.children.data[i]), t);
        r.title = trim(t);
    }
    collect(doc->document, r.text);
    r.text = trim(r.text);
    return r;
}

ExtractedText pdf_to_text(std::string_view bytes) {
    std::vector<char> data(bytes.begin(), bytes.end());
    std::unique_ptr<poppler::document> doc(poppler::document::load_from_data(&data));
    if (!doc) throw std::runtime_error("not a readable PDF");
    if (doc->is_locked()) throw std::runtime_error("the PDF is encrypted");
    ExtractedText r;
    r.pages = doc->pages();
    auto title = doc->get_title().to_utf8();
    r.title = std::string(title.begin(), title.end());
    for (int i = 0; i < r.pages; ++i) {
        std::unique_ptr<poppler::page> page(doc->create_page(i));
        if (!page) continue;
        auto text = page->text().to_utf8();
        if (!r.text.empty()) r.text += "\n\n";
        r.text.append(text.begin(), text.end());
    }
    r.text = trim(r.text);
    return r;
}

std::string valid_utf8(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    for (size_t i = 0; i < s.size();) {
        unsigned char c = static_cast<unsigned char>(s[i]);
        size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
        bool ok = n > 0 && i + n <= s.size();
        for (size_t k = 1; ok && k < n; ++k) ok = (static_cast<unsigned char>(s[i + k]) & 0xC0) == 0x80;
        if (ok && c == 0) ok = false; // NUL: binary, not text
        if (ok) {
            out.append(s.substr(i, n));
            i += n;
        } else {
            out += "\xEF\xBF\xBD";
            ++i;
        }
    }
    return out;
}

} // namespace sluice::plugins::documents
