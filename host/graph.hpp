// The pipeline as a graph: which stage's output feeds which stage. Stages
// name their inputs ("inputs": ["gate.pass"]); a stage without "inputs"
// reads the stage before it in the manifest, so a plain list still forms a
// line. Fan-in (several inputs) and fan-out (several readers of one output,
// each receiving every record) are both allowed.
#pragma once

#include "manifest.hpp"

#include <string>
#include <vector>

namespace sluice {

// Fills in implicit inputs and each InputRef::from, then checks the graph:
// unknown stages, extractors given inputs, stages with no input, loaders used
// as inputs, cycles, stages no extractor reaches, outputs nothing reads, and
// "ordered" on stages fed by several extractors. Returns one "PATH: what"
// line per problem.
std::vector<std::string> resolve_graph(Manifest &manifest);

// For each stage, the indexes of the extractors whose records reach it.
std::vector<std::vector<size_t>> extractors_reaching(const Manifest &manifest);

// Stage indices with every stage after all that send it records (inputs and
// dead letters). The graph must be resolved and acyclic.
std::vector<size_t> topological_order(const Manifest &manifest);

// For each stage, the (reader stage, input index) pairs that read it.
struct Reader {
    size_t stage;
    size_t input;
};
std::vector<std::vector<Reader>> readers_of(const Manifest &manifest);

} // namespace sluice
