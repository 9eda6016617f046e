// sluice test MANIFEST TESTS...: runs a manifest's pipeline tests and prints
// a line per case, with what differed under each failed one.
#include "cli_commands.hpp"

#include "pipeline_tests.hpp"
#include "secret_redactor.hpp"

#include <fmt/format.h>

#include <iostream>

namespace sluice {

int cmd_test(const std::string &manifest, const std::vector<std::string> &test_files,
             const std::vector<std::string> &plugin_dirs, const std::string &only) {
    std::vector<TestFile> files;
    bool usable = true;
    for (const std::string &path : test_files) {
        try {
            files.push_back(load_test_file(path));
        } catch (const TestFileError &e) {
            for (const auto &m : e.messages()) std::cerr << m << "\n";
            usable = false;
        }
    }
    if (!usable) return 2;
    size_t passed = 0, failed = 0, skipped = 0;
    for (const TestFile &file : files) {
        std::cout << file.path << " (" << manifest << ")\n";
        for (const TestCase &c : file.cases) {
            if (!only.empty() && c.name.find(only) == std::string::npos) {
                ++skipped;
                continue;
            }
            CaseResult r = run_test_case(manifest, plugin_dirs, file, c);
            (r.passed ? passed : failed)++;
            std::cout << fmt::format("  {}  {}  ({:.2f} s)\n", r.passed ? "ok  " : "FAIL", c.name, r.seconds);
            for (const std::string &f : r.failures) {
                // Continuation lines (records, reasons) sit under their message.
                std::string text = redacted(f);
                for (size_t p = text.find('\n'); p != std::string::npos; p = text.find('\n', p + 1))
                    text.insert(p + 1, "        ");
                std::cout << "        " << text << "\n";
            }
        }
    }
    std::cout << passed << " passed, " << failed << " failed";
    if (skipped) std::cout << ", " << skipped << " not selected by --case";
    std::cout << "\n";
    if (passed + failed == 0) {
        std::cerr << "sluice: test: no case ran" << (only.empty() ? "" : " (none is named like '" + only + "')") << "\n";
        return 1;
    }
    return failed ? 1 : 0;
}

} // namespace sluice
