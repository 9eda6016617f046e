// ${NAME}, ${NAME:-default} and ${file:PATH} in manifests.
#include "interpolation.hpp"
#include "manifest.hpp"

#include "temp_dir.hpp"

#include <gtest/gtest.h>

using namespace sluice;
namespace bj = boost::json;

namespace {
const char *env(const std::string &name) {
    if (name == "INPUT") return "orders.csv";
    if (name == "EMPTY") return "";
    return nullptr;
}
std::string resolved(const std::string &text, const std::string &base = ".") {
    std::string error;
    auto r = interpolate(text, base, error, env);
    return r ? *r : "error: " + error;
}
} // namespace

TEST(Interpolation, VariablesDefaultsFilesAndEscapes) {
    EXPECT_EQ(resolved("data/${INPUT}"), "data/orders.csv");
    EXPECT_EQ(resolved("${MISSING:-fallback}/x"), "fallback/x");
    EXPECT_EQ(resolved("${EMPTY:-fallback}"), "fallback") << "an empty value takes the default too";
    EXPECT_EQ(resolved("${EMPTY}"), "") << "set but empty, without a default: empty";
    EXPECT_EQ(resolved("cost: $5 and $${INPUT}"), "cost: $5 and ${INPUT}");
    EXPECT_EQ(resolved("${MISSING}"),
              "error: ${MISSING}: environment variable MISSING is not set (give a default: ${MISSING:-value})");
    EXPECT_EQ(resolved("x ${INPUT"), "error: '${INPUT': a reference that never closes (a '}' is missing; write $${ for a "
                                     "literal ${)");
    EXPECT_EQ(resolved("${9x}"), "error: ${9x}: '9x' is not a variable name (letters, digits and _, not first a digit)");

    sluice::test::TempDir dir;
    dir.write("secrets/token", "s3cret\n");
    EXPECT_EQ(resolved("Bearer ${file:secrets/token}", dir.path()), "Bearer s3cret") << "one line break removed";
    EXPECT_EQ(resolved("${file:" + (dir / "secrets/token") + "}"), "s3cret") << "absolute";
    EXPECT_NE(resolved("${file:nope}", dir.path()).find("error: ${file:nope}: cannot read " + (dir / "nope")),
              std::string::npos);
    EXPECT_EQ(resolved("${file:/dev/zero}"), "error: ${file:/dev/zero}: /dev/zero is not a regular file")
        << "never read for ever";
    EXPECT_EQ(resolved("${file:secrets}", dir.path()), "error: ${file:secrets}: " + (dir / "secrets") +
                                                           " is not a regular file");
    dir.write("big", std::string((1u << 20) + 1, 'x'));
    EXPECT_EQ(resolved("${file:big}", dir.path()), "error: ${file:big}: " + (dir / "big") + " is larger than 1 MiB");
}

TEST(Interpolation, AManifestIsResolvedAndAnUnsetVariableIsOneLineWithItsPath) {
    ::setenv("SLUICE_TEST_INPUT", "in.ndjson", 1);
    Manifest m = parse_manifest(R"({"name":"${SLUICE_TEST_NAME:-orders}","stages":[
      {"id":"in","kind":"extractor","plugin":"file","config":{"path":"data/${SLUICE_TEST_INPUT}","header":true}},
      {"id":"out","kind":"loader","plugin":"null"}]})",
                                "/tmp/m.json");
    EXPECT_EQ(m.name, "orders");
    EXPECT_EQ(m.stages[0].config.at("path"), "data/in.ndjson");
    ::unsetenv("SLUICE_TEST_INPUT");
    try {
        parse_manifest(R"({"stages":[
      {"id":"in","kind":"extractor","plugin":"file","config":{"path":"data/${SLUICE_TEST_INPUT}"}},
      {"id":"out","kind":"loader","plugin":"null"}]})",
                       "/tmp/m.json");
        FAIL() << "no error";
    } catch (const ManifestError &e) {
        ASSERT_EQ(e.messages().size(), 1u);
        EXPECT_EQ(e.messages()[0], "/tmp/m.json: /stages/0/config/path: ${SLUICE_TEST_INPUT}: environment variable "
                                   "SLUICE_TEST_INPUT is not set (give a default: ${SLUICE_TEST_INPUT:-value})");
    }
}
