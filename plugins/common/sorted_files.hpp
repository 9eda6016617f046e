// For extractors that read a sorted list of files, share it out between
// their workers, and save "the file I am in" as their position (file,
// documents).
#pragma once

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <string>
#include <system_error>
#include <vector>

namespace sluice::plugins {

// A file's name in saved positions: absolute and normalised, so that a run
// started from another directory still recognises it.
inline std::string absolute_key(const std::string &path) {
    std::error_code ec;
    auto p = std::filesystem::absolute(path, ec);
    return ec ? path : p.lexically_normal().string();
}

// Worker `index` of `count` takes every count-th file of sorted `all`.
inline std::vector<std::string> share_of(std::vector<std::string> all, uint32_t index, uint32_t count) {
    if (count <= 1) return all;
    std::vector<std::string> mine;
    for (size_t i = 0; i < all.size(); ++i)
        if (i % count == index) mine.push_back(std::move(all[i]));
    return mine;
}

// Where `saved` (an absolute_key) sits in sorted `files`: the index of that
// file, or of the first one sorting after it when it is gone.
struct SortedPlace {
    size_t index;
    bool found;
};
inline SortedPlace locate(const std::vector<std::string> &files, const std::string &saved) {
    std::vector<std::string> keys;
    keys.reserve(files.size());
    for (const auto &f : files) keys.push_back(absolute_key(f));
    auto it = std::lower_bound(keys.begin(), keys.end(), saved);
    return {size_t(it - keys.begin()), it != keys.end() && *it == saved};
}

} // namespace sluice::plugins
