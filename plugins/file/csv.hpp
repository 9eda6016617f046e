// CSV as RFC 4180 describes it: fields separated by a delimiter, records by
// CRLF or LF, fields optionally in double quotes, a quote inside a quoted
// field written twice, and line breaks allowed inside quoted fields.
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
                         size_t &count);

// The "delimiter" key of a config: one character (default ','; "\t" or
// "tab" for a tab), not a quote or a line break.
char csv_delimiter(const json::Config &config);

// Appends `value` as one CSV field, quoted only when it must be.
void append_csv_field(std::string &out, std::string_view value, char delimiter);

} // namespace sluice::plugins
