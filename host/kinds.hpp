// Stage kinds: names as written in manifests and shown to users.
#pragma once

#include <sluice/plugin.h>

#include <optional>
#include <string_view>

namespace sluice {

std::string_view kind_name(sluice_kind kind);
std::optional<sluice_kind> kind_from_name(std::string_view name);
// "an extractor", "a loader" ... for messages.
std::string_view kind_with_article(sluice_kind kind);

} // namespace sluice
