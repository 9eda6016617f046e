// Extractor "documents": one record per document (or per chunk) of a
// directory tree: its text and metadata. See README.md.
#pragma once

#include "../common/path_checks.hpp"
#include <sluice/config_spec.hpp>
#include <sluice/plugin.hpp>

#include <deque>
#include <optional>
#include <string>
#include <string_view>
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
    static config::Spec config_spec() {
        using config::Field;
        return {
            Field::string("path", "Directory to read, relative to the manifest").required().not_empty(),
            Field::strings("include", "File name patterns to read (*, ?, [..])")
                .default_to(boost::json::array{"*.txt", "*.md", "*.html", "*.htm", "*.pdf", "*.json"}),
            Field::strings("exclude", "File name patterns to skip"),
            Field::boolean("recursive", "Read subdirectories too").default_to(true),
            Field::integer("chunk_chars",
                           "Split the text into chunks of about this many characters (0: one record per document); "
                           "a chunk ends at white space in its last fifth when there is some. Chunk records carry "
                           "chunk, chunks and chunk_start (in characters) instead of characters")
                .minimum(0)
                .default_to(0),
            Field::integer("chunk_overlap", "Characters each chunk repeats from the end of the previous one (for "
                                            "retrieval and LLM context)")
                .minimum(0)
                .default_to(0),
            Field::integer("max_file_bytes", "Larger files go to the error path").minimum(1).default_to(67108864),
            Field::string("text_field", "Field for the text").not_empty().default_to("text"),
        };
    }

    explicit DocumentsExtractor(const Context &ctx);
    ~DocumentsExtractor();
    void start();
    bool pull(Emitter &out, uint32_t max_records);
    // sluice.checkpoint/1: the current document and how many of its records
    // were emitted ({"file": ..., "emitted": N} or {"file": ..., "done": true}).
    std::string checkpoint() const;
    void restore(std::string_view position);
    // sluice.resources/1: everything under its directory.
    std::string resources() const;
    // sluice.preflight/1: the directory is there to be read.
    std::vector<std::string> preflight() const {
        if (std::string p = readable_directory(root_); !p.empty()) return {"path: " + p};
        return {};
    }

private:
    // Reads the next file into pending_ (records) or the error path.
    void read_next(Emitter &out);

    struct Resume {
        std::string file; // absolute
        bool done = false;
        uint64_t emitted = 0;
    };

    Host host_;
    uint32_t worker_index_ = 0, worker_count_ = 1;
    std::string root_, text_field_;
    std::vector<std::string> include_, exclude_;
    bool recursive_ = true;
    size_t chunk_chars_ = 0, chunk_overlap_ = 0, max_file_bytes_ = 64u << 20;
    std::vector<std::string> files_;
    size_t next_ = 0;
    std::deque<std::string> pending_; // records of the current file not yet emitted
    std::string pending_source_;
    std::string current_key_;  // absolute path of the document being emitted
    uint64_t emitted_ = 0;     // records of it emitted so far
    uint64_t skip_ = 0;        // records of the next document already delivered (resuming)
    std::optional<Resume> resume_;
    void *magic_ = nullptr;
};

// Splits `text` into chunks of about `size` code points overlapping by
// `overlap`, ending at white space when there is some in the last fifth.
std::vector<std::pair<size_t, std::string>> chunk_text(const std::string &text, size_t size, size_t overlap);

} // namespace sluice::plugins::documents
