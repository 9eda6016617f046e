// Makes a rename (or a new file) in the directory of `path` durable: fsync of
// the directory itself. Best effort, as POSIX allows no more.
#pragma once

#include <fcntl.h>
#include <filesystem>
#include <string>
#include <unistd.h>

namespace sluice::plugins {

inline void sync_directory_of(const std::string &path) {
    std::filesystem::path dir = std::filesystem::path(path).parent_path();
    int dfd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        ::fsync(dfd);
        ::close(dfd);
    }
}

} // namespace sluice::plugins
