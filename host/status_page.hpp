// The live status page the admin endpoint serves at / (host/status_page:
// HTML, CSS and JavaScript, built into the binary by status_page/embed.cmake).
// The page holds no data: it reads /status every second, with the bearer
// token the user gives it when the endpoint has one.
#pragma once

#include <cstddef>
#include <string_view>

namespace sluice {

struct StatusPageAsset {
    std::string_view path; // as requested: "/", "/status_page.js" ...
    std::string_view content_type;
    std::string_view body;
};

extern const StatusPageAsset kStatusPageAssets[];
extern const size_t kStatusPageAssetCount;

// The asset served at `path`; nullptr when there is none.
inline const StatusPageAsset *status_page_asset(std::string_view path) {
    if (path == "/index.html") path = "/";
    for (size_t i = 0; i < kStatusPageAssetCount; ++i)
        if (kStatusPageAssets[i].path == path) return &kStatusPageAssets[i];
    return nullptr;
}

} // namespace sluice
