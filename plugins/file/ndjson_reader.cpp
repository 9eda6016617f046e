// The file extractor's NDJSON reader: one JSON object per line, blank lines
// skipped, a bad or over-long line one error with its file and line; with
// unwrap_dead_letters each line is a dead letter whose record is replayed.
#include "file_extractor.hpp"

#include "../common/json_members.hpp"
#include "../common/json_text.hpp"
#include "reader_text.hpp"

#include <sluice/dead_letter.hpp>

#include <cstring>

namespace sluice::plugins {

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

} // namespace sluice::plugins
