// The "sqlite" library: an extractor and a loader under one name.
#include "sqlite_extractor.hpp"
#include "sqlite_loader.hpp"

SLUICE_PLUGIN(sluice::plugins::sqlite::SqliteExtractor, sluice::plugins::sqlite::SqliteLoader)
