// The file extractor's JSON-array reader: a file holding one array of
// objects, streamed element by element (the array is never held whole); its
// state survives a checkpoint between elements.
#include "file_extractor.hpp"

#include "../common/json_members.hpp"
#include "../common/json_text.hpp"
#include "reader_text.hpp"

#include <cstring>

namespace sluice::plugins {

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

} // namespace sluice::plugins
