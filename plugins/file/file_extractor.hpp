// Extractor "file": reads NDJSON, CSV and JSON-array files matching a glob.
#pragma once

#include "csv.hpp"
#include "source_reader.hpp"

#include <sluice/config_spec.hpp>
#include <sluice/plugin.hpp>

#include <simdjson.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace sluice::plugins {

class FileExtractor {
public:
    static constexpr sluice_kind kind = SLUICE_KIND_EXTRACTOR;
    static constexpr const char *name = "file";
    static constexpr const char *version = "1.0.0";
    static constexpr const char *description =
        "Reads NDJSON, CSV (RFC 4180, with header) and JSON-array files matching a glob, streaming.";
    static config::Spec config_spec() {
        using config::Field;
        return {
            Field::string("path", "File or glob (*, ?, [..]) to read, relative to the manifest; files are read in "
                                  "sorted order")
                .required()
                .not_empty(),
            Field::choice("format", {"auto", "ndjson", "csv", "json"},
                          "auto: .csv/.tsv is CSV, .json is a JSON array when it starts with '[' (else NDJSON), "
                          "anything else NDJSON")
                .default_to("auto"),
            Field::string("delimiter", "CSV delimiter, one character (\\t or tab for tab)").default_to(","),
            Field::boolean("header", "CSV: the first record names the columns (empty names become column_N, "
                                     "duplicates get _2, _3)")
                .default_to(true),
            Field::strings("columns", "CSV: column names when header is false"),
            Field::boolean("infer_types", "CSV: integers, decimals and true/false become JSON numbers and booleans, "
                                          "empty fields null; otherwise every value is a string")
                .default_to(false),
            Field::boolean("source_attrs", "Attach attributes source (the path) and source_line to each record")
                .default_to(true),
            Field::boolean("allow_no_files", "Accept a glob that matches nothing (otherwise the run fails at start)")
                .default_to(false),
            Field::boolean("allow_unreadable",
                           "Pass over a file that cannot be opened or read (a directory, no permission, an I/O error) "
                           "with an error record of kind 'unreadable' naming it; otherwise that is an environment "
                           "error: the run retries for retry_environment_ms, then fails, and the file is never saved "
                           "as read")
                .default_to(false),
            Field::boolean("strict_quotes",
                           "CSV: refuse a quote inside an unquoted field or text after a closing quote, as RFC 4180 "
                           "does; by default both are taken literally, as Python's csv module does")
                .default_to(false),
            Field::boolean("unwrap_dead_letters",
                           "NDJSON: the files are dead letters Sluice wrote; emit the record each holds (with its "
                           "attributes, plus dead_letter_source and dead_letter_line) to replay it")
                .default_to(false),
            Field::integer("max_record_bytes", "Longest record, in every format; a longer one is one error with its "
                                               "file and line, and reading goes on at the next record")
                .minimum(1024)
                .default_to(16777216),
            Field::integer("read_buffer_bytes", "Read chunk size").minimum(4096).default_to(1048576),
        };
    }

    explicit FileExtractor(const Context &ctx);
    void start();
    bool pull(Emitter &out, uint32_t max_records);
    // sluice.checkpoint/1: {"file": path, "offset": byte, "line": n, ...}
    // inside a file, {"file": path, "done": true} after it.
    std::string checkpoint() const;
    void restore(std::string_view position);
    // sluice.resources/1: the files it reads.
    std::string resources() const;
    // sluice.preflight/1: the glob matches files it may read.
    std::vector<std::string> preflight() const;

private:
    enum class Format { auto_detect, ndjson, csv, json };

    bool open_next(Emitter &out);
    // CSV: columns_ from the first `count` fields_ (the header).
    void set_columns_from_header(size_t count);
    // Moves the file just opened to the restored position.
    void resume_in_file();
    void finish_file();
    // Each returns records emitted; sets file_done_ when the file is finished.
    uint32_t pull_ndjson(Emitter &out, uint32_t max);
    uint32_t pull_csv(Emitter &out, uint32_t max);
    uint32_t pull_json_array(Emitter &out, uint32_t max);
    // Reads more; false when the file has no more bytes (or failed).
    bool refill(Emitter &out);
    void emit_record(Emitter &out, std::string_view json, uint64_t line);
    void emit_bad(Emitter &out, std::string_view raw, const std::string &message, uint64_t line);
    // The file cannot be read: an environment error (SourceUnavailable,
    // thrown), or with allow_unreadable an error record and the next file.
    void read_failed(Emitter &out, const std::string &error);
    // unwrap_dead_letters: the record a dead letter holds, or an error.
    void emit_dead_letter(Emitter &out, std::string_view line);
    // CSV: skips the rest of a record too long to hold; false when the
    // pull must end (end of file, or a read error with allow_unreadable).
    bool skip_csv_record(Emitter &out);
    // Thrown inside a pull when the source cannot be read; nothing past the
    // failure has been consumed.
    struct SourceUnavailable {
        std::string message;
    };
    bool validate_object(std::string_view json, std::string &error);
    Format detect(const std::string &path);

    Host host_;
    std::string pattern_;
    Format format_ = Format::auto_detect;
    char delimiter_ = ',';
    bool header_ = true;
    std::vector<std::string> columns_config_;
    bool infer_types_ = false;
    bool source_attrs_ = true;
    bool allow_no_files_ = false;
    bool allow_unreadable_ = false;
    bool strict_quotes_ = false;
    bool unwrap_dead_letters_ = false;
    size_t max_record_ = 16u << 20;
    size_t chunk_ = 1u << 20;
    uint32_t worker_index_ = 0, worker_count_ = 1;

    std::vector<std::string> files_; // this worker's share, in order
    size_t next_file_ = 0;
    std::unique_ptr<SourceReader> reader_;
    std::string current_, current_key_; // as globbed; absolute (for positions)
    Format current_format_ = Format::ndjson;
    bool file_done_ = true;
    uint64_t line_ = 0; // lines consumed in the current file
    bool skipping_line_ = false;

    // CSV state
    std::optional<CsvRecordSkipper> csv_skipper_; // skipping a record too long to hold
    std::vector<std::string> columns_;
    std::vector<std::string> fields_;
    std::string json_;
    // JSON array state
    enum class ArrayState { open, first_or_close, element, comma_or_close, done } array_state_ = ArrayState::open;

    // A restored position, applied when start() has listed the files.
    struct Resume {
        std::string text;
        std::string file;
        bool done = false;
        uint64_t offset = 0, line = 0;
        int array_state = 0;
        bool skipping = false;
    };
    std::optional<Resume> resume_;
    bool resume_pending_ = false; // nothing read since the restore

    simdjson::dom::parser parser_;
    char line_buf_[24];
    uint64_t read_errors_ = 0;
    uint64_t emitted_ = 0; // records and errors emitted by the current pull
};

} // namespace sluice::plugins
