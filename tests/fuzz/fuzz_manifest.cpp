// libFuzzer target: the manifest parser and the graph checker on any text,
// read once as JSON and once as YAML.
// Every problem must come out as a ManifestError (one line per problem),
// never as a crash, a hang or another exception.
#include "graph.hpp"
#include "manifest.hpp"

#include <cstddef>
#include <cstdint>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    std::string text(reinterpret_cast<const char *>(data), size);
    for (const char *path : {"/fuzz/m.json", "/fuzz/m.yaml"}) {
        try {
            sluice::Manifest m = sluice::parse_manifest(text, path);
            sluice::resolve_graph(m);
        } catch (const sluice::ManifestError &) {
        }
    }
    return 0;
}
