// Finding and loading stage plugins. A plugin is a shared library exporting
// sluice_plugin_entry; it is checked (ABI version, descriptors) before any
// of its stages is used, and every refusal is one line naming the file.
#pragma once

#include <sluice/plugin.h>

#include <boost/json.hpp>

#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace boost::dll {
class shared_library;
}

namespace sluice {

class PluginError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// A library that is not the one the manifest pins (its "sha256").
class PinMismatch : public PluginError {
public:
    using PluginError::PluginError;
};

// Which version of a file: a plugin replaced on disk (a new build copied or
// renamed over it) has another inode, size or modification time.
struct FileIdentity {
    uint64_t device = 0, inode = 0, size = 0;
    int64_t mtime_ns = 0;
    bool operator==(const FileIdentity &) const = default;
};

// One loaded library. Kept alive (never unloaded) while any of its stages'
// instances exist: the registry and every LoadedStage hold a reference.
class PluginLibrary {
public:
    // Loads and checks `path`. With `sha256` (lowercase hex) the file is
    // hashed first and loaded only when it matches (else PinMismatch).
    // Throws PluginError("PATH: reason").
    static std::shared_ptr<PluginLibrary> open(const std::string &path, const std::string &sha256 = "");
    // The stages built into the host (built_in_stages.hpp) as one library,
    // found by name ("sluice:...") without searching any directory.
    static std::shared_ptr<PluginLibrary> built_in();
    ~PluginLibrary();

    bool is_built_in() const { return !lib_; }

    const std::string &path() const { return path_; }
    // The file the library was loaded from: `path`, or a private copy of it
    // when another version of `path` was loaded earlier in this process
    // (the dynamic loader would hand back that one). Worker processes load
    // this file.
    const std::string &load_path() const { return load_path_; }
    // `path` as it was when loaded; compare with the file now to see whether
    // it was replaced since.
    const FileIdentity &identity() const { return identity_; }
    // The SHA-256 of the file loaded (load_path), lowercase hex: computed
    // before loading when it was pinned, else when first asked for.
    const std::string &sha256() const;
    uint16_t abi_major() const { return abi_major_; }
    uint16_t abi_minor() const { return abi_minor_; }
    const std::vector<const sluice_stage_descriptor *> &stages() const { return stages_; }

private:
    PluginLibrary() = default;
    std::string path_, load_path_;
    mutable std::string sha256_;
    FileIdentity identity_;
    std::unique_ptr<boost::dll::shared_library> lib_;
    uint16_t abi_major_ = 0, abi_minor_ = 0;
    std::vector<const sluice_stage_descriptor *> stages_;
};

// A stage found in a library, with its parsed config schema.
struct LoadedStage {
    std::shared_ptr<PluginLibrary> library;
    const sluice_stage_descriptor *desc = nullptr;
    boost::json::value schema;                 // null when the plugin gave none
    std::vector<std::string> output_names;     // {"out"} when the plugin names none

    // SLUICE_CAP_CONFIG_DEFAULTS from a plugin built for ABI 1.4 or later
    // (an older plugin's bit 4 means nothing): the host fills in the
    // schema's defaults before create.
    bool fills_config_defaults() const;
};

class PluginRegistry {
public:
    // Directories searched, in order, for plugins referred to by name.
    // Files someone else could have written are refused (plugin_trust.hpp)
    // unless `allow_untrusted`, which loads them with a warning.
    explicit PluginRegistry(std::vector<std::string> search_dirs, bool allow_untrusted = false);

    // The stage of `kind` named `name`, from `library` if given, else the
    // first match in the search directories. With `sha256` only a file of
    // that hash is loaded (searching, the others are hashed, not loaded);
    // PinMismatch names the file that has the stage and both hashes.
    // Throws PluginError.
    LoadedStage find(sluice_kind kind, const std::string &name, const std::optional<std::string> &library,
                     const std::string &sha256 = "");

    struct Listing {
        std::vector<LoadedStage> stages;   // every stage of every plugin found
        std::vector<std::string> problems; // files that could not be used
    };
    Listing list_all();

    const std::vector<std::string> &search_dirs() const { return dirs_; }

private:
    // `dir`: the plugin directory the file was found in (trust is checked
    // up to it).
    std::shared_ptr<PluginLibrary> open_cached(const std::string &path, const std::string &dir,
                                               const std::string &sha256 = "");
    struct Candidate {
        std::string path, dir;
    };
    std::vector<Candidate> candidates() const; // *.so files in the search dirs
    // The file's SHA-256, hashed once per version of the file.
    std::string hash_of(const std::string &path);

    std::vector<std::string> dirs_;
    bool allow_untrusted_ = false;
    std::map<std::string, std::pair<FileIdentity, std::string>> hashes_;
    std::map<std::string, std::shared_ptr<PluginLibrary>> loaded_;
    std::map<std::string, std::string> failed_;
};

// The search path: `manifest_dirs`, then $SLUICE_PLUGIN_PATH (colon-separated),
// then the plugin directory beside the executable (<bin>/../lib/sluice/plugins),
// which is where both the build tree and an install put the bundled plugins.
std::vector<std::string> plugin_search_dirs(const std::vector<std::string> &manifest_dirs);

// The identity of the file at `path` (all zero when it cannot be read).
FileIdentity file_identity(const std::string &path);

LoadedStage describe_stage(std::shared_ptr<PluginLibrary> lib, const sluice_stage_descriptor *desc);

} // namespace sluice
