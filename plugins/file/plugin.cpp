// The "file" library: an extractor and a loader under one name.
#include "file_extractor.hpp"
#include "file_loader.hpp"

SLUICE_PLUGIN(sluice::plugins::FileExtractor, sluice::plugins::FileLoader)
