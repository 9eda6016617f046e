#include "plugin_loader.hpp"

#include <gtest/gtest.h>

#include <fstream>
#include <iterator>

using namespace sluice;

namespace {
const std::string kBad = SLUICE_BAD_PLUGIN_DIR;
const std::string kTest = SLUICE_TEST_PLUGIN_DIR;

std::string open_error(const std::string &path) {
    try {
        PluginLibrary::open(path);
        return "(loaded)";
    } catch (const PluginError &e) {
        return e.what();
    }
}

std::string find_error(PluginRegistry &r, sluice_kind kind, const std::string &name,
                       std::optional<std::string> lib = std::nullopt) {
    try {
        r.find(kind, name, lib);
        return "(found)";
    } catch (const PluginError &e) {
        return e.what();
    }
}
} // namespace

TEST(PluginLoader, RefusesAFileThatIsNotASharedLibrary) {
    std::string e = open_error(kBad + "/not_elf.so");
    EXPECT_EQ(e.rfind(kBad + "/not_elf.so: not a loadable shared library: ", 0), 0u) << e;
    EXPECT_NE(e.find("invalid ELF header"), std::string::npos) << e;
}

TEST(PluginLoader, RefusesALibraryWithoutTheEntrySymbol) {
    EXPECT_EQ(open_error(kBad + "/no_entry.so"),
              kBad + "/no_entry.so: not a Sluice plugin: it does not export sluice_plugin_entry()");
}

TEST(PluginLoader, RefusesAnotherAbiMajorNamingBothVersions) {
    EXPECT_EQ(open_error(kBad + "/abi2.so"),
              kBad + "/abi2.so: built for Sluice ABI 2.0, but this host speaks ABI 1.5 (the major versions must match)");
}

TEST(PluginLoader, RefusesANewerAbiMinor) {
    EXPECT_EQ(open_error(kBad + "/abi_newer.so"),
              kBad + "/abi_newer.so: built for Sluice ABI 1.99, newer than this host's ABI 1.5 (upgrade sluice)");
}

TEST(PluginLoader, MissingFile) {
    EXPECT_EQ(open_error("/nonexistent/x.so"), "/nonexistent/x.so: no such file");
}

TEST(PluginLoader, LoadsThePlainCPluginBuiltAgainstTheFrozenV1Header) {
    auto lib = PluginLibrary::open(kTest + "/c_tag.so");
    ASSERT_EQ(lib->stages().size(), 1u);
    EXPECT_STREQ(lib->stages()[0]->name, "c_tag");
    EXPECT_EQ(lib->abi_major(), 1);
    EXPECT_EQ(lib->abi_minor(), 0);
}

TEST(PluginLoader, LoadsThePlainCPluginBuiltAgainstTheFrozenV1_1Header) {
    auto lib = PluginLibrary::open(std::string(SLUICE_ABI_V1_1_PLUGIN_DIR) + "/c_tag.so");
    ASSERT_EQ(lib->stages().size(), 1u);
    EXPECT_STREQ(lib->stages()[0]->name, "c_tag");
    EXPECT_EQ(lib->abi_major(), 1);
    EXPECT_EQ(lib->abi_minor(), 1);
}

TEST(PluginLoader, ThePlainCPluginNeedsNoCxxRuntime) {
    std::ifstream in(kTest + "/c_tag.so", std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    ASSERT_FALSE(bytes.empty());
    EXPECT_EQ(bytes.find("libstdc++"), std::string::npos);
}

TEST(PluginLoader, FindsBundledPluginsByKindAndName) {
    PluginRegistry r(plugin_search_dirs({}));
    LoadedStage s = r.find(SLUICE_KIND_EXTRACTOR, "file", std::nullopt);
    EXPECT_EQ(s.desc->kind, SLUICE_KIND_EXTRACTOR);
    LoadedStage l = r.find(SLUICE_KIND_LOADER, "file", std::nullopt);
    EXPECT_EQ(l.desc->kind, SLUICE_KIND_LOADER);
    EXPECT_EQ(s.library, l.library) << "one library ships both file stages";
    LoadedStage v = r.find(SLUICE_KIND_VALIDATOR, "rules", std::nullopt);
    EXPECT_EQ(v.output_names, (std::vector<std::string>{"pass", "fail"}));
}

TEST(PluginLoader, WrongKindNamesTheFileAndBothKinds) {
    PluginRegistry r(plugin_search_dirs({}));
    std::string e = find_error(r, SLUICE_KIND_TRANSFORMER, "generate");
    EXPECT_NE(e.find("plugin 'generate' in "), std::string::npos) << e;
    EXPECT_NE(e.find("sluice-generate.so is an extractor, but the stage is a transformer"), std::string::npos) << e;
}

TEST(PluginLoader, UnknownNameListsWhatThereIs) {
    PluginRegistry r(plugin_search_dirs({}));
    std::string e = find_error(r, SLUICE_KIND_TRANSFORMER, "mapp");
    EXPECT_EQ(e.rfind("no transformer named 'mapp' in ", 0), 0u) << e;
    EXPECT_NE(e.find("(available transformers: llm_extract, map, route)"), std::string::npos) << e;
}

TEST(PluginLoader, ExplicitLibraryWithoutThatStage) {
    PluginRegistry r({});
    EXPECT_EQ(find_error(r, SLUICE_KIND_TRANSFORMER, "nope", kTest + "/probe.so"),
              kTest + "/probe.so: has no stage named 'nope' (it has: probe_source, probe_sink, probe_commit_sink, fault, settling_sink)");
    EXPECT_EQ(find_error(r, SLUICE_KIND_TRANSFORMER, "x", kBad + "/abi2.so"),
              kBad + "/abi2.so: built for Sluice ABI 2.0, but this host speaks ABI 1.5 (the major versions must match)");
}

TEST(PluginLoader, SearchSkipsBadFilesButListingReportsThem) {
    PluginRegistry r({kBad, kTest});
    EXPECT_EQ(r.find(SLUICE_KIND_TRANSFORMER, "c_tag", std::nullopt).desc->kind, SLUICE_KIND_TRANSFORMER);
    auto listing = r.list_all();
    EXPECT_EQ(listing.problems.size(), 6u) << "abi2, abi_newer, no_entry, not_elf, liar, undefined_symbol";
    size_t stages = listing.stages.size();
    EXPECT_EQ(stages, 8u) << "c_tag + probe_source, probe_sink, probe_commit_sink, fault, settling_sink + faulty, faulty_source";
}
