// The "llm" library: the enricher and the text-to-structure transformer.
#include "llm_enricher.hpp"
#include "llm_extract.hpp"

SLUICE_PLUGIN(sluice::plugins::llm::LlmEnricher, sluice::plugins::llm::LlmExtract)
