#include "plugin_loader.hpp"

#include "built_in_stages.hpp"
#include "file_sha256.hpp"

#include "kinds.hpp"
#include "plugin_trust.hpp"

#ifndef BOOST_DLL_USE_STD_FS
#define BOOST_DLL_USE_STD_FS
#endif
#include <boost/dll/runtime_symbol_info.hpp>
#include <boost/dll/shared_library.hpp>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>
#include <mutex>
#include <sys/stat.h>
#include <dlfcn.h>
#include <cstdlib>
#include <filesystem>
#include <spdlog/spdlog.h>

namespace sluice {

namespace fs = std::filesystem;
namespace bj = boost::json;

namespace {

std::string abi_string(unsigned major, unsigned minor) {
    return std::to_string(major) + "." + std::to_string(minor);
}

// Checks one descriptor; returns a problem or empty.
std::string check_descriptor(const sluice_stage_descriptor *d, uint32_t index) {
    std::string where = "stage descriptor " + std::to_string(index);
    if (!d) return where + " is NULL";
    if (d->struct_size < sizeof(sluice_stage_descriptor))
        return where + " has struct_size " + std::to_string(d->struct_size) + ", expected at least " +
               std::to_string(sizeof(sluice_stage_descriptor));
    if (!d->name || !*d->name) return where + " has no name";
    where = "stage '" + std::string(d->name) + "'";
    if (d->kind < SLUICE_KIND_EXTRACTOR || d->kind > SLUICE_KIND_LOADER)
        return where + " has unknown kind " + std::to_string(d->kind);
    if (!d->create || !d->destroy) return where + " lacks create or destroy";
    if (d->kind == SLUICE_KIND_EXTRACTOR && !d->pull) return where + " is an extractor without pull";
    if (d->kind != SLUICE_KIND_EXTRACTOR && !d->process)
        return where + " is " + std::string(kind_with_article(d->kind)) + " without process";
    if (d->output_count > 0 && !d->output_names) return where + " declares outputs without names";
    for (uint32_t i = 0; i < d->output_count; ++i)
        if (!d->output_names[i] || !*d->output_names[i]) return where + " has an unnamed output";
    if (d->config_schema && *d->config_schema) {
        boost::system::error_code ec;
        bj::value v = bj::parse(d->config_schema, ec);
        if (ec || !v.is_object()) return where + " has a config_schema that is not a JSON object";
    }
    return {};
}

} // namespace

FileIdentity file_identity(const std::string &path) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) return {};
    return FileIdentity{uint64_t(st.st_dev), uint64_t(st.st_ino), uint64_t(st.st_size),
                        int64_t(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec};
}

namespace {

// Which version of each plugin file this process loaded first. dlopen()
// gives back an already loaded library for the same path, so a file
// replaced since (a live plugin swap) is loaded from a copy of its own.
std::mutex versions_mutex;
std::map<std::string, FileIdentity> &first_versions() {
    static std::map<std::string, FileIdentity> m;
    return m;
}

// A copy of `path` in this process's private plugin directory (removed at
// exit), for the dynamic loader to take as a new library.
std::string private_copy(const std::string &path) {
    static std::string dir;
    static int copies = 0;
    if (dir.empty()) {
        std::string tmpl = (fs::temp_directory_path() / "sluice-plugins-XXXXXX").string();
        if (!mkdtemp(tmpl.data())) throw PluginError(path + ": cannot make a private copy: " + std::strerror(errno));
        dir = tmpl;
        std::atexit([] {
            std::error_code ec;
            fs::remove_all(dir, ec);
        });
    }
    std::string copy = dir + "/" + std::to_string(++copies) + "-" + fs::path(path).filename().string();
    std::error_code ec;
    fs::copy_file(path, copy, fs::copy_options::overwrite_existing, ec);
    if (ec) throw PluginError(path + ": cannot make a private copy to load it: " + ec.message());
    return copy;
}

std::string pin_mismatch(const std::string &path, const std::string &actual, const std::string &pinned) {
    return path + ": its sha256 is " + actual + ", but the manifest pins " + pinned +
           ": it is not the file the manifest was reviewed with (review the new one, then 'sluice pin' the manifest)";
}

} // namespace

std::shared_ptr<PluginLibrary> PluginLibrary::open(const std::string &path, const std::string &sha256) {
    std::error_code fec;
    if (!fs::exists(path, fec)) throw PluginError(path + ": no such file");
    if (!fs::is_regular_file(path, fec)) throw PluginError(path + ": not a regular file");
    std::shared_ptr<PluginLibrary> self(new PluginLibrary());
    self->path_ = path;
    self->identity_ = file_identity(path);
    self->load_path_ = fs::absolute(path).string();
    {
        std::lock_guard<std::mutex> lock(versions_mutex);
        const std::string key = fs::weakly_canonical(path, fec).string();
        auto [it, first] = first_versions().emplace(key, self->identity_);
        if (!first && !(it->second == self->identity_)) self->load_path_ = private_copy(path);
    }
    if (!sha256.empty()) {
        // Before the loader runs any of its code: the file loaded (the
        // copy, if one was made) is the one pinned.
        try {
            self->sha256_ = file_sha256(self->load_path_);
        } catch (const std::runtime_error &e) {
            throw PluginError(e.what());
        }
        if (self->sha256_ != sha256) throw PinMismatch(pin_mismatch(path, self->sha256_, sha256));
    }
    self->lib_ = std::make_unique<boost::dll::shared_library>();
    try {
        // rtld_local: two plugins may carry the same symbols without clashing.
        // RTLD_NODELETE: a library stays mapped for the life of the process,
        // so its statics (and anything a plugin's thread still touches) never
        // dangle; leak checkers can also still see what they point to.
        auto mode = static_cast<boost::dll::load_mode::type>(RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
        self->lib_->load(fs::path(self->load_path_), mode);
    } catch (const std::exception &e) {
        // Boost.DLL wraps dlerror() as "... (dlerror system message: PATH:
        // REASON): ..."; keep REASON, which says why.
        std::string why = e.what();
        const std::string tag = "dlerror system message: ";
        if (auto p = why.find(tag); p != std::string::npos) {
            why = why.substr(p + tag.size());
            if (auto end = why.rfind("):"); end != std::string::npos) why.resize(end);
            const std::string prefix = self->load_path_ + ": ";
            if (why.compare(0, prefix.size(), prefix) == 0) why = why.substr(prefix.size());
        }
        if (why.find("undefined symbol") != std::string::npos)
            throw PluginError(path + ": cannot be loaded, it needs a symbol nothing provides (" + why +
                              "): it was built against another version of a library it uses");
        throw PluginError(path + ": not a loadable shared library: " + why);
    }
    if (!self->lib_->has(SLUICE_ENTRY_SYMBOL))
        throw PluginError(path + ": not a Sluice plugin: it does not export " SLUICE_ENTRY_SYMBOL "()");
    auto entry_fn = self->lib_->get<const sluice_entry *()>(SLUICE_ENTRY_SYMBOL);
    const sluice_entry *entry = entry_fn();
    if (!entry) throw PluginError(path + ": " SLUICE_ENTRY_SYMBOL "() returned NULL");
    self->abi_major_ = entry->abi_major;
    self->abi_minor_ = entry->abi_minor;
    std::string host_abi = abi_string(SLUICE_ABI_MAJOR, SLUICE_ABI_MINOR);
    std::string plugin_abi = abi_string(entry->abi_major, entry->abi_minor);
    if (entry->abi_major != SLUICE_ABI_MAJOR)
        throw PluginError(path + ": built for Sluice ABI " + plugin_abi + ", but this host speaks ABI " +
                          host_abi + " (the major versions must match)");
    if (entry->abi_minor > SLUICE_ABI_MINOR)
        throw PluginError(path + ": built for Sluice ABI " + plugin_abi + ", newer than this host's ABI " +
                          host_abi + " (upgrade sluice)");
    if (entry->struct_size < sizeof(sluice_entry))
        throw PluginError(path + ": entry struct_size " + std::to_string(entry->struct_size) +
                          " is smaller than ABI " + host_abi + "'s " + std::to_string(sizeof(sluice_entry)));
    if (entry->stage_count == 0 || !entry->stages) throw PluginError(path + ": the plugin lists no stages");
    for (uint32_t i = 0; i < entry->stage_count; ++i) {
        const sluice_stage_descriptor *d = entry->stages[i];
        if (std::string problem = check_descriptor(d, i); !problem.empty())
            throw PluginError(path + ": " + problem);
        self->stages_.push_back(d);
    }
    return self;
}

PluginLibrary::~PluginLibrary() = default;

const std::string &PluginLibrary::sha256() const {
    if (sha256_.empty() && lib_) {
        try {
            sha256_ = file_sha256(load_path_);
        } catch (const std::runtime_error &) {
            // Gone since it was loaded: there is nothing to show.
        }
    }
    return sha256_;
}

std::shared_ptr<PluginLibrary> PluginLibrary::built_in() {
    static const std::shared_ptr<PluginLibrary> lib = [] {
        std::shared_ptr<PluginLibrary> self(new PluginLibrary());
        self->path_ = "(built into sluice)";
        self->abi_major_ = SLUICE_ABI_MAJOR;
        self->abi_minor_ = SLUICE_ABI_MINOR;
        self->stages_ = built_in_stage_descriptors();
        return self;
    }();
    return lib;
}

LoadedStage describe_stage(std::shared_ptr<PluginLibrary> lib, const sluice_stage_descriptor *desc) {
    LoadedStage s;
    s.library = std::move(lib);
    s.desc = desc;
    if (desc->config_schema && *desc->config_schema) s.schema = bj::parse(desc->config_schema);
    for (uint32_t i = 0; i < desc->output_count; ++i) s.output_names.emplace_back(desc->output_names[i]);
    if (s.output_names.empty()) s.output_names.emplace_back("out");
    return s;
}

PluginRegistry::PluginRegistry(std::vector<std::string> search_dirs, bool allow_untrusted)
    : dirs_(std::move(search_dirs)), allow_untrusted_(allow_untrusted) {}

std::shared_ptr<PluginLibrary> PluginRegistry::open_cached(const std::string &path, const std::string &dir,
                                                           const std::string &sha256) {
    std::string key = fs::weakly_canonical(path).string();
    if (auto it = loaded_.find(key); it != loaded_.end()) {
        if (!sha256.empty() && it->second->sha256() != sha256)
            throw PinMismatch(pin_mismatch(path, it->second->sha256(), sha256));
        return it->second;
    }
    if (auto it = failed_.find(key); it != failed_.end()) throw PluginError(it->second);
    try {
        if (std::string problem = untrusted_plugin_file(path, dir); !problem.empty()) {
            if (!allow_untrusted_) throw PluginError(problem);
            spdlog::warn("{} (loaded anyway: untrusted plugins are allowed)", problem);
        }
        auto lib = PluginLibrary::open(path, sha256);
        loaded_[key] = lib;
        return lib;
    } catch (const PinMismatch &) {
        throw; // another stage may pin another version
    } catch (const PluginError &e) {
        failed_[key] = e.what();
        throw;
    }
}

std::string PluginRegistry::hash_of(const std::string &path) {
    const FileIdentity now = file_identity(path);
    auto &known = hashes_[path];
    if (known.second.empty() || !(known.first == now)) known = {now, file_sha256(path)};
    return known.second;
}

std::vector<PluginRegistry::Candidate> PluginRegistry::candidates() const {
    std::vector<Candidate> out;
    for (const std::string &dir : dirs_) {
        std::error_code ec;
        if (!fs::is_directory(dir, ec)) continue;
        std::vector<std::string> here;
        for (const auto &e : fs::directory_iterator(dir, ec)) {
            if (e.path().extension() == ".so" && e.is_regular_file(ec)) here.push_back(e.path().string());
        }
        std::sort(here.begin(), here.end());
        for (std::string &path : here) out.push_back({std::move(path), dir});
    }
    return out;
}

LoadedStage PluginRegistry::find(sluice_kind kind, const std::string &name,
                                 const std::optional<std::string> &library, const std::string &sha256) {
    auto wrong_kind = [&](const std::string &path, const sluice_stage_descriptor *d) {
        return PluginError("plugin '" + name + "' in " + path + " is " + std::string(kind_with_article(d->kind)) +
                           ", but the stage is " + std::string(kind_with_article(kind)));
    };
    if (!library && name.rfind("sluice:", 0) == 0) {
        for (const auto *d : PluginLibrary::built_in()->stages())
            if (name == d->name && d->kind == kind) return describe_stage(PluginLibrary::built_in(), d);
        throw PluginError("'" + name + "' is not a stage built into sluice");
    }
    if (library) {
        auto lib = open_cached(*library, "", sha256);
        const sluice_stage_descriptor *other = nullptr;
        for (const auto *d : lib->stages()) {
            if (name != d->name) continue;
            if (d->kind == kind) return describe_stage(lib, d);
            other = d;
        }
        if (other) throw wrong_kind(*library, other);
        std::string names;
        for (const auto *d : lib->stages()) names += (names.empty() ? "" : ", ") + std::string(d->name);
        throw PluginError(*library + ": has no stage named '" + name + "' (it has: " + names + ")");
    }
    if (!sha256.empty()) {
        // Only the pinned file is loaded: the candidates are hashed, not run.
        for (const Candidate &c : candidates()) {
            std::string hash;
            try {
                hash = hash_of(c.path);
            } catch (const std::runtime_error &) {
                continue;
            }
            if (hash != sha256) continue;
            auto lib = open_cached(c.path, c.dir, sha256);
            for (const auto *d : lib->stages())
                if (name == d->name && d->kind == kind) return describe_stage(lib, d);
        }
        // None is: the file that has the stage says what changed.
        LoadedStage found = find(kind, name, library);
        throw PinMismatch(pin_mismatch(found.library->path(), found.library->sha256(), sha256));
    }
    std::optional<std::pair<std::string, const sluice_stage_descriptor *>> other_kind;
    std::vector<std::string> same_kind;
    // Libraries refused on the way: any of them could be the one asked for.
    // Those whose file name holds the stage's name are named first.
    std::vector<std::string> refused_likely, refused_other;
    for (const auto &[path, dir] : candidates()) {
        std::shared_ptr<PluginLibrary> lib;
        try {
            lib = open_cached(path, dir);
        } catch (const PluginError &e) {
            spdlog::debug("skipping {}", e.what());
            const bool likely = fs::path(path).stem().string().find(name) != std::string::npos;
            (likely ? refused_likely : refused_other).emplace_back(e.what());
            continue;
        }
        for (const auto *d : lib->stages()) {
            if (d->kind == kind) {
                if (name == d->name) return describe_stage(lib, d);
                same_kind.emplace_back(d->name);
            } else if (name == d->name && !other_kind) {
                other_kind.emplace(path, d);
            }
        }
    }
    if (other_kind) throw wrong_kind(other_kind->first, other_kind->second);
    std::string dirs;
    for (const auto &d : dirs_) dirs += (dirs.empty() ? "" : ":") + d;
    std::sort(same_kind.begin(), same_kind.end());
    same_kind.erase(std::unique(same_kind.begin(), same_kind.end()), same_kind.end());
    std::string avail;
    for (const auto &n : same_kind) avail += (avail.empty() ? "" : ", ") + n;
    std::string refused;
    refused_likely.insert(refused_likely.end(), refused_other.begin(), refused_other.end());
    constexpr size_t kNamed = 5;
    for (size_t i = 0; i < refused_likely.size() && i < kNamed; ++i) refused += "; refused " + refused_likely[i];
    if (refused_likely.size() > kNamed)
        refused += "; and " + std::to_string(refused_likely.size() - kNamed) + " more refused libraries (sluice plugins lists them)";
    throw PluginError("no " + std::string(kind_name(kind)) + " named '" + name + "' in " +
                      (dirs.empty() ? std::string("(no plugin directories)") : dirs) +
                      (avail.empty() ? std::string() : " (available " + std::string(kind_name(kind)) + "s: " + avail + ")") +
                      refused);
}

PluginRegistry::Listing PluginRegistry::list_all() {
    Listing out;
    for (const auto &[path, dir] : candidates()) {
        try {
            auto lib = open_cached(path, dir);
            for (const auto *d : lib->stages()) out.stages.push_back(describe_stage(lib, d));
        } catch (const PluginError &e) {
            out.problems.emplace_back(e.what());
        }
    }
    return out;
}

std::vector<std::string> plugin_search_dirs(const std::vector<std::string> &manifest_dirs) {
    std::vector<std::string> dirs = manifest_dirs;
    if (const char *env = std::getenv("SLUICE_PLUGIN_PATH")) {
        std::string s = env;
        size_t start = 0;
        while (start <= s.size()) {
            size_t end = s.find(':', start);
            if (end == std::string::npos) end = s.size();
            if (end > start) dirs.push_back(s.substr(start, end - start));
            start = end + 1;
        }
    }
    std::error_code ec;
    fs::path exe = boost::dll::program_location(ec);
    if (!ec) dirs.push_back((exe.parent_path().parent_path() / "lib" / "sluice" / "plugins").string());
    return dirs;
}

bool LoadedStage::fills_config_defaults() const {
    return desc && library && (desc->capabilities & SLUICE_CAP_CONFIG_DEFAULTS) && library->abi_minor() >= 4;
}

} // namespace sluice
