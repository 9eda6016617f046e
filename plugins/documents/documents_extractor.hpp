// Extractor "documents": one record per document (or per chunk) of a
// directory tree: its text and metadata. See README.md.
#pragma once

#include <sluice/plugin.hpp>

#include <deque>
#include <string>
#include <vector>

namespace sluice::plugins::documents {

class DocumentsExtractor {
public:
    static constexpr sluice_kind kind = SLUICE_KIND_EXTRACTOR;
    static constexpr const char *name = "documents";
    static constexpr const char *version = "1.0.0";
    static constexpr const char *description =
        "Reads .txt, .md, .html, .pdf and .json documents under a directory as text records with metadata, "
        "optionally in overlapping chunks.";
    static constexpr const char *config_schema = R"json({
  "type": "object",
  "required": ["path"],
  "properties": {
    "path": {"type": "string", "minLength": 1, "description": "Directory to read, relative to the manifest"},
    "include": {"type": "array", "items": {"type": "string"}, "default": ["*.txt", "*.md", "*.html", "*.htm", "*.pdf", "*.json"],
                "description": "File name patterns to read (*, ?, [..])"},
    "exclude": {"type": "array", "items": {"type": "string"}, "description": "File name patterns to skip"},
    "recursive": {"type": "boolean", "default": true, "description": "Read subdirectories too"},
    "chunk_chars": {"type": "integer", "minimum": 0, "default": 0,
                    "description": "Split text into chunks of about this many characters (0: one record per document); a chunk ends at white space when it can"},
    "chunk_overlap": {"type": "integer", "minimum": 0, "default": 0, "description": "Characters each chunk repeats from the end of the one before"},
    "max_file_bytes": {"type": "integer", "minimum": 1, "default": 67108864, "description": "Larger files go to the error path"},
    "text_field": {"type": "string", "minLength": 1, "default": "text", "description": "Field for the text"}
  }
})json";

    explicit DocumentsExtractor(const Context &ctx);
    ~DocumentsExtractor();
    void start();
    bool pull(Emitter &out, uint32_t max_records);

private:
    // Reads the next file into pending_ (records) or the error path.
    void read_next(Emitter &out);

    Host host_;
    std::string root_, text_field_;
    std::vector<std::string> include_, exclude_;
    bool recursive_ = true;
    size_t chunk_chars_ = 0, chunk_overlap_ = 0, max_file_bytes_ = 64u << 20;
    std::vector<std::string> files_;
    size_t next_ = 0;
    std::deque<std::string> pending_; // records of the current file not yet emitted
    std::string pending_source_;
    void *magic_ = nullptr;
};

// Splits `text` into chunks of about `size` code points overlapping by
// `overlap`, ending at white space when there is some in the last fifth.
std::vector<std::pair<size_t, std::string>> chunk_text(const std::string &text, size_t size, size_t overlap);

} // namespace sluice::plugins::documents
