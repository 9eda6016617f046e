// sluice pin: the SHA-256 of each stage's plugin library written into the
// manifest ("sha256" of the stage), so that the reviewed manifest loads
// exactly the reviewed code: any other file is refused at load.
#include "cli_commands.hpp"

#include "document.hpp"
#include "manifest.hpp"
#include "plugin_loader.hpp"
#include "secret_redactor.hpp"

#include <iostream>

namespace sluice {

int cmd_pin(const std::string &path, const std::vector<std::string> &plugin_dirs, bool allow_untrusted, bool write) {
    Manifest m;
    Document doc;
    try {
        m = load_manifest(path);
        // As written (${...} references kept), to be written back.
        doc = parse_document(read_text_file(path, "manifest"), path);
    } catch (const ManifestError &e) {
        for (const auto &msg : e.messages()) std::cerr << redacted(msg) << "\n";
        return 2;
    } catch (const std::exception &e) {
        std::cerr << e.what() << "\n";
        return 2;
    }
    m.plugin_dirs.insert(m.plugin_dirs.begin(), plugin_dirs.begin(), plugin_dirs.end());
    PluginRegistry registry(plugin_search_dirs(m.plugin_dirs), allow_untrusted || m.allow_untrusted_plugins);
    bool failed = false;
    boost::json::array &stages = doc.root.as_object()["stages"].as_array();
    for (size_t i = 0; i < m.stages.size() && i < stages.size(); ++i) {
        const StageSpec &spec = m.stages[i];
        try {
            LoadedStage found = registry.find(spec.kind, spec.plugin, spec.library);
            if (found.library->is_built_in()) continue; // part of sluice itself
            const std::string &hash = found.library->sha256();
            if (hash.empty()) throw PluginError(found.library->path() + ": cannot be read to hash it");
            stages[i].as_object()["sha256"] = hash;
            std::cerr << spec.id << ": " << found.library->path() << " sha256 " << hash
                      << (spec.sha256.empty() ? "" : spec.sha256 == hash ? " (unchanged)" : " (was " + spec.sha256 + ")")
                      << "\n";
        } catch (const PluginError &e) {
            std::cerr << path << ": " << spec.json_path << (spec.library ? "/library: " : "/plugin: ") << e.what() << "\n";
            failed = true;
        }
    }
    if (failed) return 2;
    const std::string text = is_yaml_path(path) ? to_yaml(doc.root) : to_pretty_json(doc.root);
    if (!write) {
        std::cout << text;
        return 0;
    }
    if (std::string problem = write_text_file_atomically(path, text); !problem.empty()) {
        std::cerr << "sluice: pin: " << problem << "\n";
        return 1;
    }
    std::cerr << "pinned " << path << "\n";
    return 0;
}

} // namespace sluice
