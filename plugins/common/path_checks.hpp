// Checks of files and directories for sluice.preflight/1: whether a run could
// read or write them, found without changing anything. Each returns "" when
// all is well, else what is wrong.
#pragma once

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <string>
#include <unistd.h>

namespace sluice::plugins {

inline std::string readable_file(const std::string &path) {
    std::error_code ec;
    if (!std::filesystem::exists(path, ec)) return path + " does not exist";
    if (std::filesystem::is_directory(path, ec)) return path + " is a directory";
    if (::access(path.c_str(), R_OK) != 0) return "cannot read " + path + ": " + std::strerror(errno);
    return {};
}

inline std::string readable_directory(const std::string &path) {
    std::error_code ec;
    if (!std::filesystem::is_directory(path, ec)) return path + " is not a directory";
    if (::access(path.c_str(), R_OK | X_OK) != 0) return "cannot read " + path + ": " + std::strerror(errno);
    return {};
}

// A file the run will create or replace (or append to): its directory must
// exist and be writable, or, with `create_dirs`, the nearest directory that
// exists must be; an existing file must be a writable file.
inline std::string writable_target(const std::string &path, bool create_dirs) {
    namespace fs = std::filesystem;
    std::error_code ec;
    if (fs::exists(path, ec)) {
        if (fs::is_directory(path, ec)) return path + " is a directory";
        if (::access(path.c_str(), W_OK) != 0) return "cannot write " + path + ": " + std::strerror(errno);
    }
    fs::path dir = fs::path(path).parent_path();
    if (dir.empty()) dir = ".";
    if (!fs::exists(dir, ec)) {
        if (!create_dirs) return "directory " + dir.string() + " does not exist (set create_dirs to create it)";
        fs::path existing = dir;
        while (!existing.empty() && !fs::exists(existing, ec)) existing = existing.parent_path();
        if (existing.empty()) existing = ".";
        if (::access(existing.c_str(), W_OK | X_OK) != 0)
            return "cannot create directory " + dir.string() + ": " + existing.string() + " is not writable";
        return {};
    }
    if (!fs::is_directory(dir, ec)) return dir.string() + " is not a directory";
    if (::access(dir.c_str(), W_OK | X_OK) != 0)
        return "cannot write in directory " + dir.string() + ": " + std::strerror(errno);
    return {};
}

} // namespace sluice::plugins
