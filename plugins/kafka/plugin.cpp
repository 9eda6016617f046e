// The "kafka" library: a consumer-group extractor and an idempotent loader.
#include "kafka_extractor.hpp"
#include "kafka_loader.hpp"

SLUICE_PLUGIN(sluice::plugins::kafka::KafkaExtractor, sluice::plugins::kafka::KafkaLoader)
