#include "kinds.hpp"

namespace sluice {

std::string_view kind_name(sluice_kind kind) {
    switch (kind) {
    case SLUICE_KIND_EXTRACTOR: return "extractor";
    case SLUICE_KIND_TRANSFORMER: return "transformer";
    case SLUICE_KIND_ENRICHER: return "enricher";
    case SLUICE_KIND_VALIDATOR: return "validator";
    case SLUICE_KIND_LOADER: return "loader";
    default: return "unknown";
    }
}

std::optional<sluice_kind> kind_from_name(std::string_view name) {
    for (sluice_kind k = SLUICE_KIND_EXTRACTOR; k <= SLUICE_KIND_LOADER; ++k)
        if (kind_name(k) == name) return k;
    return std::nullopt;
}

std::string_view kind_with_article(sluice_kind kind) {
    switch (kind) {
    case SLUICE_KIND_EXTRACTOR: return "an extractor";
    case SLUICE_KIND_TRANSFORMER: return "a transformer";
    case SLUICE_KIND_ENRICHER: return "an enricher";
    case SLUICE_KIND_VALIDATOR: return "a validator";
    case SLUICE_KIND_LOADER: return "a loader";
    default: return "an unknown kind";
    }
}

} // namespace sluice
