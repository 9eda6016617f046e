#include "file_extractor.hpp"

#include "../common/json_members.hpp"
#include "../common/path_checks.hpp"
#include "../common/json_text.hpp"
#include "../common/resource_uri.hpp"
#include "../common/sorted_files.hpp"
#include "csv.hpp"
#include "reader_text.hpp"

#include <sluice/dead_letter.hpp>
#include <sluice/json.hpp>

#include <algorithm>
#include <charconv>
#include <cstring>
#include <glob.h>

namespace sluice::plugins {

namespace {

bool ends_with(const std::string &s, std::string_view suffix) {
    return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

} // namespace

FileExtractor::FileExtractor(const Context &ctx)
    : host_(ctx.host), worker_index_(ctx.worker_index), worker_count_(ctx.worker_count) {
    json::Config c(ctx.config_json);
    pattern_ = ctx.resolve_path(c.required_string("path"));
    std::string f = c.string("format");
    if (f == "auto") format_ = Format::auto_detect;
    else if (f == "ndjson") format_ = Format::ndjson;
    else if (f == "csv") format_ = Format::csv;
    else if (f == "json") format_ = Format::json;
    else c.fail("format", "expected auto, ndjson, csv or json");
    delimiter_ = csv_delimiter(c);
    header_ = c.boolean("header");
    columns_config_ = c.strings("columns");
    if (!header_ && columns_config_.empty()) c.fail("columns", "required when header is false");
    infer_types_ = c.boolean("infer_types");
    source_attrs_ = c.boolean("source_attrs");
    allow_no_files_ = c.boolean("allow_no_files");
    allow_unreadable_ = c.boolean("allow_unreadable");
    strict_quotes_ = c.boolean("strict_quotes");
    unwrap_dead_letters_ = c.boolean("unwrap_dead_letters");
    max_record_ = size_t(c.integer("max_record_bytes"));
    chunk_ = size_t(c.integer("read_buffer_bytes"));
}

void FileExtractor::start() {
    glob_t g{};
    int rc = ::glob(pattern_.c_str(), 0, nullptr, &g);
    std::vector<std::string> all;
    if (rc == 0)
        for (size_t i = 0; i < g.gl_pathc; ++i) all.emplace_back(g.gl_pathv[i]);
    globfree(&g);
    if (rc != 0 && rc != GLOB_NOMATCH) throw Error("path '" + pattern_ + "': cannot list the files it matches");
    if (all.empty() && !allow_no_files_ && !resume_)
        throw Error("path '" + pattern_ + "' matches no file (set allow_no_files to accept that)");
    std::sort(all.begin(), all.end());
    const size_t total = all.size();
    files_ = share_of(std::move(all), worker_index_, worker_count_);
    reader_ = std::make_unique<SourceReader>(chunk_, max_record_);
    host_.debug("reading " + std::to_string(files_.size()) + " of " + std::to_string(total) + " files");
    if (resume_) {
        // Files are read in sorted order: those before the saved one are
        // done. If the saved file is gone, carry on with the next name.
        const SortedPlace place = locate(files_, resume_->file);
        next_file_ = place.index;
        if (!place.found) {
            host_.warn("resuming: " + resume_->file + " is no longer there; going on with the files after it");
            resume_.reset();
        } else if (resume_->done) {
            ++next_file_;
            resume_.reset();
        }
        host_.info("resuming after " + (next_file_ ? files_[next_file_ - 1] + " " : std::string()) + "(" +
                   std::to_string(next_file_) + " of " + std::to_string(files_.size()) + " files already read)");
    }
}

std::string FileExtractor::checkpoint() const {
    if (resume_pending_) return resume_ ? resume_->text : std::string();
    if (current_.empty()) return {}; // nothing read yet: the start
    json::PositionWriter out;
    out.string("file", current_key_);
    if (file_done_) return out.flag("done", true).text();
    out.count("offset", reader_->offset()).count("line", line_);
    if (current_format_ == Format::json) out.count("array_state", uint64_t(array_state_));
    if (skipping_line_) out.flag("skipping", true);
    return out.text();
}

void FileExtractor::restore(std::string_view position) {
    json::SavedPosition saved(position);
    Resume r;
    r.text = saved.text();
    r.file = saved.required_string("file");
    r.done = saved.flag("done");
    r.offset = saved.count("offset");
    r.line = saved.count("line");
    r.array_state = int(saved.count("array_state"));
    if (r.array_state > int(ArrayState::done)) saved.fail("unknown array_state");
    r.skipping = saved.flag("skipping");
    resume_ = std::move(r);
    resume_pending_ = true;
}

void FileExtractor::resume_in_file() {
    Resume r = std::move(*resume_);
    resume_.reset();
    if (r.offset == 0) return;
    int64_t size = reader_->file_size();
    if (size >= 0 && uint64_t(size) < r.offset) {
        host_.warn("resuming: " + current_ + " is now shorter (" + std::to_string(size) +
                   " bytes) than the saved position (" + std::to_string(r.offset) + "); reading it from its start");
        return;
    }
    if (current_format_ == Format::csv && header_) {
        // The header names the columns of the records after the position.
        size_t count = 0;
        while (true) {
            CsvScan scan = parse_csv_record(reader_->data(), reader_->size(), reader_->eof(), delimiter_, fields_, count);
            if (scan.status != CsvScan::need_more) break;
            std::string err;
            auto f = reader_->fill(err);
            if (f != SourceReader::Fill::more && f != SourceReader::Fill::eof) break;
        }
        set_columns_from_header(count);
    }
    std::string err;
    if (!reader_->seek(r.offset, err)) {
        resume_ = std::move(r); // tried again with the file: the next pull reopens it
        --next_file_;
        reader_->close();
        file_done_ = true;
        throw SourceUnavailable{current_ + ": cannot resume at byte " + std::to_string(resume_->offset) + ": " + err};
    }
    line_ = r.line;
    skipping_line_ = r.skipping;
    if (current_format_ == Format::json) array_state_ = ArrayState(r.array_state);
}

FileExtractor::Format FileExtractor::detect(const std::string &path) {
    if (format_ != Format::auto_detect) return format_;
    if (ends_with(path, ".csv") || ends_with(path, ".CSV") || ends_with(path, ".tsv")) return Format::csv;
    if (ends_with(path, ".json")) {
        // A .json file holds an array, or is NDJSON despite its name.
        std::string err;
        while (reader_->size() < 1 && reader_->fill(err) == SourceReader::Fill::more) {}
        const char *d = reader_->data();
        size_t n = reader_->size(), i = 0;
        while (true) {
            while (i < n && (d[i] == ' ' || d[i] == '\t' || d[i] == '\r' || d[i] == '\n')) ++i;
            if (i < n || reader_->fill(err) != SourceReader::Fill::more) break;
            d = reader_->data();
            n = reader_->size();
        }
        return i < n && d[i] == '[' ? Format::json : Format::ndjson;
    }
    return Format::ndjson;
}

bool FileExtractor::open_next(Emitter &out) {
    while (next_file_ < files_.size()) {
        std::string err;
        if (!reader_->open(files_[next_file_], err)) {
            if (!allow_unreadable_) throw SourceUnavailable{files_[next_file_] + ": cannot open file: " + err};
            current_ = files_[next_file_++];
            emit_bad(out, {}, "cannot open file: " + err, 0);
            continue;
        }
        current_ = files_[next_file_++];
        line_ = 0;
        skipping_line_ = false;
        columns_.clear();
        if (!header_) columns_ = columns_config_;
        array_state_ = ArrayState::open;
        // Skip a UTF-8 byte order mark.
        std::string ferr;
        while (reader_->size() < 3 && reader_->fill(ferr) == SourceReader::Fill::more) {}
        if (reader_->size() >= 3 && std::memcmp(reader_->data(), "\xEF\xBB\xBF", 3) == 0) reader_->consume(3);
        current_format_ = detect(current_);
        file_done_ = false;
        host_.debug("reading " + current_);
        current_key_ = absolute_key(current_);
        if (resume_ && resume_->file == current_key_) resume_in_file();
        return true;
    }
    return false;
}

void FileExtractor::finish_file() {
    reader_->close();
    host_.counter("files_read", 1);
}

bool FileExtractor::pull(Emitter &out, uint32_t max_records) {
    if (!reader_) throw FatalError("pull before start");
    emitted_ = 0;
    uint32_t done = 0;
    try {
        while (done < max_records) {
            if (file_done_ && !open_next(out)) {
                if (read_errors_) host_.counter("read_errors", int64_t(read_errors_));
                read_errors_ = 0;
                resume_pending_ = false;
                return true;
            }
            resume_pending_ = false;
            uint32_t want = max_records - done;
            switch (current_format_) {
            case Format::csv: done += pull_csv(out, want); break;
            case Format::json: done += pull_json_array(out, want); break;
            default: done += pull_ndjson(out, want); break;
            }
            if (file_done_) finish_file();
        }
    } catch (const SourceUnavailable &e) {
        // Nothing was consumed past the failure. Records already emitted in
        // this call go out; the next pull meets the failure again.
        if (emitted_ > 0) return false;
        throw EnvironmentError(e.message);
    }
    return false;
}

void FileExtractor::read_failed(Emitter &out, const std::string &error) {
    if (!allow_unreadable_) throw SourceUnavailable{current_ + ":" + std::to_string(line_ + 1) + ": read error: " + error};
    emit_bad(out, {}, "read error: " + error + "; skipping the rest of the file (allow_unreadable)", line_ + 1);
    file_done_ = true;
}

bool FileExtractor::refill(Emitter &out) {
    std::string err;
    switch (reader_->fill(err)) {
    case SourceReader::Fill::more: return true;
    case SourceReader::Fill::eof: return false;
    case SourceReader::Fill::too_large: return false;
    case SourceReader::Fill::error: read_failed(out, err); return false;
    }
    return false;
}

bool FileExtractor::validate_object(std::string_view json, std::string &error) {
    simdjson::dom::element doc;
    // The reader guarantees SIMDJSON_PADDING readable bytes after any record.
    auto err = parser_.parse(json.data(), json.size(), false).get(doc);
    if (err) {
        if (err == simdjson::NUMBER_ERROR) {
            // Valid JSON, but a number nothing downstream could hold: say
            // which field.
            if (auto bad = find_unrepresentable_number(json)) {
                error = "field '" + bad->first + "': the number " + bad->second.substr(0, 64) +
                        (bad->second.find_first_of(".eE") == std::string::npos ? " does not fit a 64-bit integer"
                                                                                : " is out of the range of a double");
                return false;
            }
        }
        error = std::string("invalid JSON: ") + simdjson::error_message(err);
        return false;
    }
    if (!doc.is_object()) {
        error = "expected a JSON object";
        return false;
    }
    return true;
}

void FileExtractor::emit_record(Emitter &out, std::string_view json, uint64_t line) {
    ++emitted_;
    if (!source_attrs_) {
        out.emit_new(json);
        return;
    }
    auto r = std::to_chars(line_buf_, line_buf_ + sizeof line_buf_, line);
    out.emit_new(json, {attr(SLUICE_ATTR_SOURCE, current_),
                        attr(SLUICE_ATTR_SOURCE_LINE, std::string_view(line_buf_, size_t(r.ptr - line_buf_)))});
}

void FileExtractor::emit_bad(Emitter &out, std::string_view raw, const std::string &message, uint64_t line) {
    ++read_errors_;
    ++emitted_;
    if (raw.size() > 4096) raw = raw.substr(0, 4096); // enough to recognise it
    if (line == 0) {
        out.emit_failed(raw, message, {attr(SLUICE_ATTR_SOURCE, current_)});
        return;
    }
    auto r = std::to_chars(line_buf_, line_buf_ + sizeof line_buf_, line);
    out.emit_failed(raw, message,
                    {attr(SLUICE_ATTR_SOURCE, current_),
                     attr(SLUICE_ATTR_SOURCE_LINE, std::string_view(line_buf_, size_t(r.ptr - line_buf_)))});
}

std::vector<std::string> FileExtractor::preflight() const {
    glob_t g{};
    int rc = ::glob(pattern_.c_str(), 0, nullptr, &g);
    std::vector<std::string> problems;
    if (rc == 0) {
        // With allow_unreadable, such a file becomes an error record instead.
        for (size_t i = 0; i < g.gl_pathc && problems.size() < 5 && !allow_unreadable_; ++i)
            if (std::string p = readable_file(g.gl_pathv[i]); !p.empty()) problems.push_back("path: " + p);
    } else if (rc == GLOB_NOMATCH && !allow_no_files_) {
        problems.push_back("path: '" + pattern_ + "' matches no file (set allow_no_files to accept that)");
    } else if (rc != GLOB_NOMATCH) {
        problems.push_back("path: cannot list the files '" + pattern_ + "' matches");
    }
    globfree(&g);
    return problems;
}

std::string FileExtractor::resources() const { return Resources().reads("path", file_uri(pattern_)).json(); }

} // namespace sluice::plugins
