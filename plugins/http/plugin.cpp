// The "http" library: the ingest extractor and the webhook loader.
#include "http_ingest.hpp"
#include "http_loader.hpp"

SLUICE_PLUGIN(sluice::plugins::http::HttpIngest, sluice::plugins::http::HttpLoader)
