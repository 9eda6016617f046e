#include "file_extractor.hpp"

#include "../common/json_members.hpp"
#include "../common/json_text.hpp"
#include "../common/resource_uri.hpp"
#include "../common/sorted_files.hpp"
#include "csv.hpp"

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

bool is_blank(std::string_view s) {
    for (char c : s)
        if (c != ' ' && c != '\t' && c != '\r') return false;
    return true;
}

size_t count_newlines(std::string_view s) { return size_t(std::count(s.begin(), s.end(), '\n')); }

// CSV field to JSON: a number, boolean or null when inference is on and the
// text is exactly one, else a string.
void append_csv_value(std::string &out, std::string_view v, bool infer) {
    if (infer) {
        if (v.empty()) {
            out += "null";
            return;
        }
        if (v == "true" || v == "false" || is_json_number(v)) {
            out.append(v);
            return;
        }
    }
    append_json_string(out, v);
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

void FileExtractor::set_columns_from_header(size_t count) {
    // Column names from the header fields, made unique.
    for (size_t i = 0; i < count; ++i) {
        std::string name = fields_[i].empty() ? "column_" + std::to_string(i + 1) : fields_[i];
        std::string unique = name;
        for (int k = 2; std::find(columns_.begin(), columns_.end(), unique) != columns_.end(); ++k)
            unique = name + "_" + std::to_string(k);
        columns_.push_back(unique);
    }
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

uint32_t FileExtractor::pull_ndjson(Emitter &out, uint32_t max) {
    uint32_t n = 0;
    std::string error;
    while (n < max) {
        const char *d = reader_->data();
        size_t size = reader_->size();
        const char *nl = static_cast<const char *>(std::memchr(d, '\n', size));
        std::string_view line;
        if (!nl) {
            if (!reader_->eof()) {
                std::string err;
                auto f = reader_->fill(err);
                if (f == SourceReader::Fill::more || f == SourceReader::Fill::eof) continue;
                if (f == SourceReader::Fill::error) {
                    read_failed(out, err);
                    return n + 1;
                }
                // too_large: no line break within max_record_bytes.
                if (!skipping_line_) {
                    emit_bad(out, std::string_view(d, std::min<size_t>(size, 1024)),
                             "record longer than max_record_bytes (" + std::to_string(max_record_) + ")", line_ + 1);
                    ++n;
                }
                skipping_line_ = true;
                reader_->consume(size);
                continue;
            }
            if (size == 0) {
                file_done_ = true;
                return n;
            }
            line = std::string_view(d, size); // last line, without a line break
            reader_->consume(size);
        } else {
            line = std::string_view(d, size_t(nl - d));
            reader_->consume(line.size() + 1);
        }
        ++line_;
        if (skipping_line_) { // the tail of a line that was too long
            skipping_line_ = false;
            continue;
        }
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        if (is_blank(line)) continue;
        if (line.size() > max_record_) {
            emit_bad(out, line.substr(0, 1024), "record longer than max_record_bytes (" + std::to_string(max_record_) + ")",
                     line_);
        } else if (unwrap_dead_letters_) {
            emit_dead_letter(out, line);
        } else if (validate_object(line, error)) emit_record(out, line, line_);
        else emit_bad(out, line, error, line_);
        ++n;
    }
    return n;
}

uint32_t FileExtractor::pull_csv(Emitter &out, uint32_t max) {
    uint32_t n = 0;
    while (n < max) {
        size_t count = 0;
        if (csv_skipper_) {
            if (!skip_csv_record(out)) return n;
            continue;
        }
        CsvScan scan = parse_csv_record(reader_->data(), reader_->size(), reader_->eof(), delimiter_, fields_, count,
                                        strict_quotes_);
        if (scan.status == CsvScan::need_more) {
            std::string err;
            auto f = reader_->fill(err);
            if (f == SourceReader::Fill::more || f == SourceReader::Fill::eof) continue;
            if (f == SourceReader::Fill::error) {
                read_failed(out, err);
                return n + 1;
            }
            // Too long to hold: one error, then on with the next record.
            emit_bad(out, std::string_view(reader_->data(), std::min<size_t>(reader_->size(), 1024)),
                     "record longer than max_record_bytes (" + std::to_string(max_record_) +
                         "); skipped to the next line break outside quotes",
                     line_ + 1);
            csv_skipper_.emplace(delimiter_, max_record_);
            ++n;
            continue;
        }
        if (reader_->size() == 0) {
            file_done_ = true;
            return n;
        }
        uint64_t start_line = line_ + 1;
        std::string_view raw(reader_->data(), scan.consumed);
        line_ += scan.newlines;
        if (scan.status == CsvScan::invalid) {
            emit_bad(out, raw, "invalid CSV: " + scan.error, start_line);
            reader_->consume(scan.consumed);
            ++n;
            continue;
        }
        if (raw.size() > max_record_) {
            emit_bad(out, raw, "record longer than max_record_bytes (" + std::to_string(max_record_) + ")", start_line);
            reader_->consume(scan.consumed);
            ++n;
            continue;
        }
        if (!simdjson::validate_utf8(raw.data(), raw.size())) {
            emit_bad(out, raw,
                     "invalid UTF-8 at byte " + std::to_string(json::first_invalid_utf8(raw) + 1) + " of the record",
                     start_line);
            reader_->consume(scan.consumed);
            ++n;
            continue;
        }
        if (count == 1 && fields_[0].empty() && is_blank(raw.substr(0, raw.find('\n')))) {
            reader_->consume(scan.consumed); // blank line
            continue;
        }
        if (columns_.empty()) {
            set_columns_from_header(count);
            reader_->consume(scan.consumed);
            continue;
        }
        if (count != columns_.size()) {
            std::string_view shown = raw;
            while (!shown.empty() && (shown.back() == '\n' || shown.back() == '\r')) shown.remove_suffix(1);
            emit_bad(out, shown,
                     "expected " + std::to_string(columns_.size()) + " fields" + (header_ ? " (as in the header)" : "") +
                         ", found " + std::to_string(count),
                     start_line);
            reader_->consume(scan.consumed);
            ++n;
            continue;
        }
        json_.clear();
        json_ += '{';
        for (size_t i = 0; i < count; ++i) {
            if (i) json_ += ',';
            append_json_string(json_, columns_[i]);
            json_ += ':';
            append_csv_value(json_, fields_[i], infer_types_);
        }
        json_ += '}';
        emit_record(out, json_, start_line);
        reader_->consume(scan.consumed);
        ++n;
    }
    return n;
}

void FileExtractor::emit_dead_letter(Emitter &out, std::string_view line) {
    std::string problem;
    std::optional<dead_letter::Read> letter = dead_letter::read(line, problem);
    if (!letter) {
        emit_bad(out, line, problem, line_);
        return;
    }
    std::string error;
    if (!letter->is_json || !validate_object(letter->payload, error)) {
        // Still not a record (text, or bytes that are not UTF-8): it goes
        // to the error path again, with the bytes it had.
        emit_bad(out, letter->payload, "the dead letter's record is not a JSON object (it failed with: " + letter->error + ")",
                 line_);
        return;
    }
    ++emitted_;
    std::vector<sluice_attr> attrs;
    for (const auto &[k, v] : letter->attributes) attrs.push_back(attr(k, v));
    auto r = std::to_chars(line_buf_, line_buf_ + sizeof line_buf_, line_);
    attrs.push_back(attr("dead_letter_source", current_));
    attrs.push_back(attr("dead_letter_line", std::string_view(line_buf_, size_t(r.ptr - line_buf_))));
    out.emit(0, SLUICE_NO_INPUT, letter->payload, nullptr, attrs.data(), uint32_t(attrs.size()));
}

bool FileExtractor::skip_csv_record(Emitter &out) {
    for (;;) {
        size_t used = csv_skipper_->scan(reader_->data(), reader_->size());
        if (used != std::string::npos) {
            reader_->consume(used);
            line_ += csv_skipper_->newlines();
            csv_skipper_.reset();
            return true;
        }
        reader_->consume(reader_->size());
        std::string err;
        auto f = reader_->fill(err);
        if (f == SourceReader::Fill::more) continue;
        if (f == SourceReader::Fill::error) {
            read_failed(out, err);
            return false;
        }
        // The file ends inside the record.
        line_ += csv_skipper_->newlines();
        csv_skipper_.reset();
        file_done_ = true;
        return false;
    }
}

uint32_t FileExtractor::pull_json_array(Emitter &out, uint32_t max) {
    uint32_t n = 0;
    std::string error;
    while (n < max) {
        // Skip white space, counting lines.
        const char *d = reader_->data();
        size_t size = reader_->size(), i = 0;
        while (i < size && (d[i] == ' ' || d[i] == '\t' || d[i] == '\r' || d[i] == '\n')) line_ += d[i++] == '\n';
        reader_->consume(i);
        if (reader_->size() == 0) {
            if (!reader_->eof() && refill(out)) continue;
            if (file_done_) return n + 1; // read error
            if (array_state_ != ArrayState::done) {
                emit_bad(out, {}, "unexpected end of file: the JSON array is not closed", line_ + 1);
                ++n;
            }
            file_done_ = true;
            return n;
        }
        d = reader_->data();
        size = reader_->size();
        char c = d[0];
        switch (array_state_) {
        case ArrayState::open:
            if (c != '[') {
                emit_bad(out, std::string_view(d, std::min<size_t>(size, 256)),
                         "expected a JSON array ('[') at the start of the file", line_ + 1);
                file_done_ = true;
                return n + 1;
            }
            reader_->consume(1);
            array_state_ = ArrayState::first_or_close;
            break;
        case ArrayState::first_or_close:
            if (c == ']') {
                reader_->consume(1);
                array_state_ = ArrayState::done;
            } else {
                array_state_ = ArrayState::element;
            }
            break;
        case ArrayState::comma_or_close:
            if (c == ',') {
                reader_->consume(1);
                array_state_ = ArrayState::element;
            } else if (c == ']') {
                reader_->consume(1);
                array_state_ = ArrayState::done;
            } else {
                emit_bad(out, std::string_view(d, std::min<size_t>(size, 256)),
                         "expected ',' or ']' between array elements; skipping the rest of the file", line_ + 1);
                file_done_ = true;
                return n + 1;
            }
            break;
        case ArrayState::element: {
            size_t len = json_value_length(d, size);
            if (len == 0) {
                if (!reader_->eof()) {
                    std::string err;
                    auto f = reader_->fill(err);
                    if (f == SourceReader::Fill::more || f == SourceReader::Fill::eof) continue;
                    if (f == SourceReader::Fill::error) {
                        read_failed(out, err);
                        return n + 1;
                    }
                    emit_bad(out, std::string_view(d, std::min<size_t>(size, 1024)),
                             "element longer than max_record_bytes (" + std::to_string(max_record_) +
                                 "); skipping the rest of the file",
                             line_ + 1);
                    file_done_ = true;
                    return n + 1;
                }
                emit_bad(out, std::string_view(d, std::min<size_t>(size, 1024)),
                         "unexpected end of file inside an array element", line_ + 1);
                file_done_ = true;
                return n + 1;
            }
            std::string_view elem(d, len);
            uint64_t start_line = line_ + 1;
            if (len > max_record_)
                emit_bad(out, elem.substr(0, 1024),
                         "element longer than max_record_bytes (" + std::to_string(max_record_) + ")", start_line);
            else if (validate_object(elem, error)) emit_record(out, elem, start_line);
            else emit_bad(out, elem, error, start_line);
            line_ += count_newlines(elem);
            reader_->consume(len);
            array_state_ = ArrayState::comma_or_close;
            ++n;
            break;
        }
        case ArrayState::done:
            emit_bad(out, std::string_view(d, std::min<size_t>(size, 256)),
                     "unexpected text after the closing ']'", line_ + 1);
            file_done_ = true;
            return n + 1;
        }
    }
    return n;
}

std::string FileExtractor::resources() const { return Resources().reads("path", file_uri(pattern_)).json(); }

} // namespace sluice::plugins
