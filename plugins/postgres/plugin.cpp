// The "postgres" library: an extractor and a loader under one name.
#include "pg_extractor.hpp"
#include "pg_loader.hpp"

SLUICE_PLUGIN(sluice::plugins::postgres::PgExtractor, sluice::plugins::postgres::PgLoader)
