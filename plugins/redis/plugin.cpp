// The "redis" library: a Redis Streams extractor (consumer group) and loader.
#include "stream_extractor.hpp"
#include "stream_loader.hpp"

SLUICE_PLUGIN(sluice::plugins::redis::StreamExtractor, sluice::plugins::redis::StreamLoader)
