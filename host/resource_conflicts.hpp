// A pipeline must not write what it reads. Stages may declare what they
// read and write (sluice.resources/1); a loader that writes something one of
// the pipeline's extractors reads would overwrite or grow its own input
// while reading it, and is refused before anything runs.
#pragma once

#include "manifest.hpp"

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sluice {

struct DeclaredResource {
    std::string uri;
    std::string config_key; // the config key it comes from ("" if not said)
};

struct StageResources {
    size_t stage = 0; // index in the manifest
    std::vector<DeclaredResource> reads, writes;
};

// Reads what a plugin declared; a message when it is not the documented
// shape ({"reads": [{"uri": ..., "config": ...}], "writes": [...]}).
std::optional<StageResources> parse_resources(size_t stage, std::string_view json, std::string &problem);

// Whether writing `write_uri` touches what `read_uri` reads: file:// paths
// are compared after resolving symbolic links, a read pattern may be a glob
// or a directory ending in "/"; sqlite:// by database file and table; any
// other scheme as text.
bool writes_what_is_read(std::string_view read_uri, std::string_view write_uri);

// One line per loader that writes what an extractor reads, naming both
// stages and config keys.
std::vector<std::string> write_read_conflicts(const Manifest &manifest, const std::vector<StageResources> &stages);

} // namespace sluice
