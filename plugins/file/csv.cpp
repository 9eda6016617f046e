#include "csv.hpp"

#include <cstring>

namespace sluice::plugins {

CsvScan parse_csv_record(const char *p, size_t n, bool at_eof, char delim, std::vector<std::string> &fields,
                         size_t &count, bool strict_quotes) {
    CsvScan r;
    count = 0;
    size_t i = 0;
    auto need_more = [&] {
        r.status = CsvScan::need_more;
        return r;
    };
    auto fail = [&](std::string msg) {
        r.status = CsvScan::invalid;
        r.error = std::move(msg);
        // Skip to the end of this physical line so reading can go on.
        const void *nl = std::memchr(p + i, '\n', n - i);
        r.consumed = nl ? size_t(static_cast<const char *>(nl) - p) + 1 : n;
        r.newlines += nl ? 1 : 0;
        return r;
    };
    for (;;) {
        if (count == fields.size()) fields.emplace_back();
        std::string &field = fields[count++];
        field.clear();
        if (i < n && p[i] == '"') {
            ++i;
            for (;;) {
                const void *q = std::memchr(p + i, '"', n - i);
                if (!q) {
                    if (!at_eof) return need_more();
                    // The quote runs to the end of the file: nothing after
                    // it can be trusted to be a record.
                    r.status = CsvScan::invalid;
                    r.error = "unterminated quoted field " + std::to_string(count);
                    r.consumed = n;
                    return r;
                }
                size_t j = size_t(static_cast<const char *>(q) - p);
                for (size_t k = i; k < j; ++k) r.newlines += p[k] == '\n';
                field.append(p + i, j - i);
                if (j + 1 < n && p[j + 1] == '"') {
                    field += '"';
                    i = j + 2;
                    continue;
                }
                if (j + 1 >= n && !at_eof) return need_more();
                i = j + 1;
                break;
            }
            if (i < n && p[i] != delim && p[i] != '\n' && p[i] != '\r') {
                if (strict_quotes)
                    return fail("unexpected character after the closing quote of field " + std::to_string(count));
                // "abc"def: the rest is part of the field, as written.
                size_t start = i;
                while (i < n && p[i] != delim && p[i] != '\n' && p[i] != '\r') ++i;
                if (i >= n && !at_eof) return need_more();
                field.append(p + start, i - start);
            }
        } else {
            size_t start = i;
            while (i < n && p[i] != delim && p[i] != '\n' && p[i] != '\r') {
                if (p[i] == '"' && strict_quotes) return fail("quote inside unquoted field " + std::to_string(count));
                ++i;
            }
            if (i >= n && !at_eof) return need_more();
            field.assign(p + start, i - start);
        }
        if (i >= n) {
            r.consumed = n; // last record of the file, without a line break
            return r;
        }
        if (p[i] == delim) {
            ++i;
            if (i >= n && !at_eof) return need_more();
            continue;
        }
        if (p[i] == '\r') {
            if (i + 1 >= n && !at_eof) return need_more();
            if (i + 1 < n && p[i + 1] == '\n') ++i;
        }
        r.consumed = i + 1;
        r.newlines += 1;
        return r;
    }
}

size_t CsvRecordSkipper::scan(const char *p, size_t n) {
    for (size_t i = 0; i < n; ++i) {
        const char c = p[i];
        if (c == '\n') ++newlines_;
        switch (state_) {
        case State::field_start:
        case State::unquoted:
        case State::quote_in_quoted:
            if (c == '\n') {
                state_ = State::field_start;
                return i + 1;
            }
            if (c == delimiter_) state_ = State::field_start;
            else if (c == '"' && state_ != State::unquoted) state_ = State::quoted, quoted_ = 0;
            else state_ = State::unquoted;
            break;
        case State::quoted:
            if (c == '"') state_ = State::quote_in_quoted;
            else if (++quoted_ > max_quoted_) state_ = State::unquoted; // a stray quote
            break;
        }
    }
    return std::string::npos;
}

char csv_delimiter(const json::Config &config) {
    std::string d = config.string("delimiter");
    if (d == "\\t" || d == "tab") d = "\t";
    if (d.size() != 1 || d[0] == '"' || d[0] == '\n' || d[0] == '\r')
        config.fail("delimiter", "expected one character other than a quote or a line break");
    return d[0];
}

void append_csv_field(std::string &out, std::string_view value, char delim) {
    bool quote = !value.empty() && (value.front() == ' ' || value.back() == ' ');
    for (char c : value)
        if (c == delim || c == '"' || c == '\n' || c == '\r') {
            quote = true;
            break;
        }
    if (!quote) {
        out.append(value);
        return;
    }
    out += '"';
    for (char c : value) {
        if (c == '"') out += '"';
        out += c;
    }
    out += '"';
}

} // namespace sluice::plugins
