// CSV as RFC 4180 describes it: fields separated by a delimiter, records by
// CRLF or LF, fields optionally in double quotes, a quote inside a quoted
// field written twice, and line breaks allowed inside quoted fields. Like
// Python's csv module and most readers, a quote inside an unquoted field
// (37°36'37.8"N) and text after a closing quote are taken literally unless
// `strict_quotes` asks for RFC 4180 to the letter.
#pragma once

#include <sluice/json.hpp>

#include <string>
#include <string_view>
#include <vector>

namespace sluice::plugins {

struct CsvScan {
    enum Status { complete, need_more, invalid } status = complete;
    size_t consumed = 0; // bytes of the record, with its line break
    size_t newlines = 0; // line breaks consumed (quoted ones too)
    std::string error;
};

// Parses one record from the start of [p, p+n) into fields[0..count).
// `at_eof` says the data ends the file (a last record may lack its line
// break). `fields` is reused across calls to avoid allocations.
CsvScan parse_csv_record(const char *p, size_t n, bool at_eof, char delimiter, std::vector<std::string> &fields,
                         size_t &count, bool strict_quotes = false);

// Finds where a record ends without keeping it, chunk after chunk: how the
// reader skips a record too long to hold and goes on at the next one. The
// record ends at the first line break outside quotes. A quoted field longer
// than `max_quoted` bytes is taken to have a stray quote: from there on the
// next line break ends the record, so one bad quote cannot swallow the rest
// of a file.
class CsvRecordSkipper {
public:
    CsvRecordSkipper(char delimiter, size_t max_quoted) : delimiter_(delimiter), max_quoted_(max_quoted) {}
    // Scans the next bytes of the record. Returns how many of them belong
    // to it (through its line break) when it ends in them, else npos (all
    // of them belong to it).
    size_t scan(const char *p, size_t n);
    size_t newlines() const { return newlines_; }

private:
    enum class State { field_start, unquoted, quoted, quote_in_quoted } state_ = State::field_start;
    char delimiter_;
    size_t max_quoted_, quoted_ = 0, newlines_ = 0;
};

// The "delimiter" key of a config: one character (default ','; "\t" or
// "tab" for a tab), not a quote or a line break.
char csv_delimiter(const json::Config &config);

// Appends `value` as one CSV field, quoted only when it must be.
void append_csv_field(std::string &out, std::string_view value, char delimiter);

} // namespace sluice::plugins
