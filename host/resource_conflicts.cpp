#include "resource_conflicts.hpp"

#include "kinds.hpp"

#include <boost/json.hpp>

#include <filesystem>
#include <fnmatch.h>

namespace sluice {

namespace bj = boost::json;
namespace fs = std::filesystem;

namespace {

bool starts_with(std::string_view s, std::string_view prefix) { return s.substr(0, prefix.size()) == prefix; }

// An absolute path with symbolic links resolved as far as it exists; the
// rest (a file not written yet, a glob) kept as written.
std::string real(std::string_view path) {
    std::error_code ec;
    fs::path p = fs::weakly_canonical(fs::path(std::string(path)), ec);
    return ec ? fs::path(std::string(path)).lexically_normal().string() : p.string();
}

bool parse_list(const bj::value *v, std::vector<DeclaredResource> &out) {
    if (!v) return true;
    if (!v->is_array()) return false;
    for (const bj::value &e : v->get_array()) {
        const bj::object *o = e.if_object();
        const bj::value *uri = o ? o->if_contains("uri") : nullptr;
        if (!uri || !uri->is_string()) return false;
        const bj::value *key = o->if_contains("config");
        out.push_back(DeclaredResource{std::string(uri->get_string()),
                                       key && key->is_string() ? std::string(key->get_string()) : std::string()});
    }
    return true;
}

} // namespace

std::optional<StageResources> parse_resources(size_t stage, std::string_view json, std::string &problem) {
    boost::system::error_code ec;
    bj::value v = bj::parse(json, ec);
    const bj::object *o = ec ? nullptr : v.if_object();
    StageResources r;
    r.stage = stage;
    if (!o || !parse_list(o->if_contains("reads"), r.reads) || !parse_list(o->if_contains("writes"), r.writes)) {
        problem = "the plugin's sluice.resources/1 answer is not {\"reads\": [{\"uri\": ...}], \"writes\": [...]}: " +
                  std::string(json.substr(0, 200));
        return std::nullopt;
    }
    return r;
}

bool writes_what_is_read(std::string_view read_uri, std::string_view write_uri) {
    constexpr std::string_view file = "file://", sqlite = "sqlite://";
    if (starts_with(read_uri, file) && starts_with(write_uri, file)) {
        std::string_view read = read_uri.substr(file.size());
        const std::string written = real(write_uri.substr(file.size()));
        if (!read.empty() && read.back() == '/') {
            std::string dir = real(read.substr(0, read.size() - 1));
            return starts_with(written, dir + "/");
        }
        // The directory part resolved, the name kept (it may be a pattern).
        fs::path pattern(std::string{read});
        std::string resolved = (fs::path(real(pattern.parent_path().string())) / pattern.filename()).string();
        return resolved == written || fnmatch(resolved.c_str(), written.c_str(), FNM_PATHNAME) == 0;
    }
    if (starts_with(read_uri, sqlite) && starts_with(write_uri, sqlite)) {
        auto split = [&](std::string_view uri) {
            uri.remove_prefix(sqlite.size());
            size_t hash = uri.find('#');
            return std::make_pair(real(uri.substr(0, hash)),
                                  hash == std::string_view::npos ? std::string() : std::string(uri.substr(hash + 1)));
        };
        auto [rdb, rtable] = split(read_uri);
        auto [wdb, wtable] = split(write_uri);
        return rdb == wdb && rtable == wtable && !rtable.empty();
    }
    return read_uri == write_uri;
}

std::vector<std::string> write_read_conflicts(const Manifest &manifest, const std::vector<StageResources> &stages) {
    std::vector<std::string> out;
    auto where = [&](const StageResources &s, const DeclaredResource &r) {
        return manifest.stages[s.stage].json_path + "/config" + (r.config_key.empty() ? "" : "/" + r.config_key);
    };
    for (const StageResources &w : stages) {
        const StageSpec &writer = manifest.stages[w.stage];
        if (writer.kind != SLUICE_KIND_LOADER) continue;
        for (const DeclaredResource &written : w.writes)
            for (const StageResources &r : stages) {
                const StageSpec &reader = manifest.stages[r.stage];
                if (reader.kind != SLUICE_KIND_EXTRACTOR) continue;
                for (const DeclaredResource &read : r.reads) {
                    if (!writes_what_is_read(read.uri, written.uri)) continue;
                    out.push_back(manifest.path + ": " + where(w, written) + ": loader '" + writer.id + "' writes " +
                                  written.uri + ", which extractor '" + reader.id + "' reads (" + where(r, read) + ": " +
                                  read.uri + "): the run would overwrite its own input; write somewhere else");
                }
            }
    }
    return out;
}

} // namespace sluice
