// sluice convert: a manifest or pipeline test file from JSON to YAML or back.
#include "cli_commands.hpp"

#include "document.hpp"

#include <filesystem>
#include <iostream>

namespace sluice {

namespace fs = std::filesystem;

int cmd_convert(const std::string &in_path, const std::string &out_path, const std::string &to, bool force) {
    // The target syntax: --to, else OUT's extension, else the other one.
    bool yaml_out = false;
    if (!to.empty()) yaml_out = to == "yaml";
    else if (!out_path.empty()) yaml_out = is_yaml_path(out_path);
    else yaml_out = !is_yaml_path(in_path);
    if (!out_path.empty() && !to.empty() && is_yaml_path(out_path) != yaml_out) {
        std::cerr << "sluice: convert: --to " << to << " but " << out_path << " names a "
                  << (yaml_out ? "JSON" : "YAML") << " file\n";
        return 2;
    }
    Document doc;
    try {
        doc = parse_document(read_text_file(in_path), in_path);
    } catch (const std::exception &e) {
        std::cerr << e.what() << "\n";
        return 2;
    }
    // ${...} references are kept as written: converting must neither need
    // the variables nor write a secret's value into a file.
    const std::string text = yaml_out ? to_yaml(doc.root) : to_pretty_json(doc.root);
    if (out_path.empty()) {
        std::cout << text;
        return 0;
    }
    std::error_code ec;
    if (!force && fs::exists(out_path, ec)) {
        std::cerr << "sluice: convert: " << out_path << " exists (--force replaces it)\n";
        return 2;
    }
    if (std::string problem = write_text_file_atomically(out_path, text); !problem.empty()) {
        std::cerr << "sluice: convert: " << problem << "\n";
        return 1;
    }
    return 0;
}

} // namespace sluice
