// The file extractor's CSV reader (RFC 4180, header or given columns): rows
// become JSON objects, a bad or over-long row is one error and reading
// resynchronises at the next line break outside quotes. The field parser
// itself is csv.cpp.
#include "file_extractor.hpp"

#include "../common/json_members.hpp"
#include "../common/json_text.hpp"
#include "reader_text.hpp"
#include "csv.hpp"

#include <cstring>

namespace sluice::plugins {

namespace {

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

} // namespace sluice::plugins
