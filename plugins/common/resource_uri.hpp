// URIs for sluice.resources/1 (what a stage reads and writes), so the host
// can refuse a pipeline that writes its own input.
#pragma once

#include <filesystem>
#include <string>

namespace sluice::plugins {

// file:///absolute/path for a path (or glob) relative to the working
// directory or absolute.
inline std::string file_uri(const std::string &path) {
    return "file://" + std::filesystem::absolute(path).lexically_normal().string();
}

// sqlite:///absolute/path#table
inline std::string sqlite_uri(const std::string &path, const std::string &table) {
    return "sqlite://" + std::filesystem::absolute(path).lexically_normal().string() + "#" + table;
}

} // namespace sluice::plugins
