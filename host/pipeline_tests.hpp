// Pipeline tests (`sluice test MANIFEST TESTS`): cases that feed records to
// named stages of a manifest and check what named stages send on, without
// the pipeline's real sources and destinations. Each case runs the real
// pipeline (the same plugins, configs, error policies and routing) with
// every extractor replaced by one that emits the records the case gives it
// (none when it gives none) and every loader replaced by a capture: nothing
// is read from or written to the outside.
//
// A test file (JSON or YAML):
//   env: {NAME: value}                # set while every case loads and runs
//   tests:
//     - name: a complete order passes
//       env: {NAME: value}            # for this case only
//       inputs:
//         - stage: clean              # any stage; an extractor's records are its output
//           records: [{...}, ...]     # JSON records, or
//           texts: ["...", ...]       # text records (content_type, default text/plain)
//           attributes: {key: value}  # on every record of this input
//       expect:
//         - stage: quality.pass       # STAGE or STAGE.OUTPUT; a loader: what it received
//           count: 1
//           records: [{...}]          # exactly these (unordered: true for any order)
//           contains: [{...}]         # each matches some record (the fields given)
//           each: [{field: amount, min: 0}]   # conditions every record meets
//         - stage: quality
//           rejected: ["amount: below the minimum 0"]   # why it rejected records
//           errors: []                                   # why it failed records
#pragma once

#include "built_in_stages.hpp"
#include "test_expectations.hpp"

#include <map>
#include <stdexcept>
#include <string>
#include <vector>

namespace sluice {

// A test file that cannot be used: one message per problem,
// "FILE[:LINE:COL]: /json/path: what".
class TestFileError : public std::runtime_error {
public:
    explicit TestFileError(std::vector<std::string> messages);
    const std::vector<std::string> &messages() const { return messages_; }

private:
    std::vector<std::string> messages_;
};

struct TestInput {
    std::string json_path;
    std::string stage;
    std::vector<GivenRecord> records;
};

struct TestCase {
    std::string name;
    std::string json_path; // "/tests/2"
    std::map<std::string, std::string> env;
    std::vector<TestInput> inputs;
    std::vector<Expectation> expect;
};

struct TestFile {
    std::string path;
    std::map<std::string, std::string> env;
    std::vector<TestCase> cases;
};

TestFile load_test_file(const std::string &path);
TestFile parse_test_file(const std::string &text, const std::string &path);

struct CaseResult {
    bool passed = false;
    // "PATH (STAGE): what", one per failed expectation; or why the case
    // could not run (a manifest or setup problem).
    std::vector<std::string> failures;
    double seconds = 0;
};

// Runs `test` of `file` against the manifest at `manifest_path`, with
// `plugin_dirs` searched first.
CaseResult run_test_case(const std::string &manifest_path, const std::vector<std::string> &plugin_dirs,
                         const TestFile &file, const TestCase &test);

} // namespace sluice
