// Plugin files sluice refuses to load: one that another user, or a group,
// could have written (and the override that loads it anyway), one that is
// not the file the manifest pins by SHA-256; `sluice pin`, the hashes
// `sluice plugins --json` and `sluice validate` print, and the same checks
// in an isolated stage's worker process and on a live reload.
#include "child_process.hpp"
#include "eventually.hpp"
#include "free_port.hpp"
#include "http_client.hpp"
#include "temp_dir.hpp"

#include <boost/json.hpp>
#include <gtest/gtest.h>

#include <csignal>
#include <cstdio>
#include <filesystem>
#include <sys/stat.h>

using namespace sluice::test;
namespace bj = boost::json;
namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

// The hash as coreutils computes it (not as sluice does).
std::string sha256sum(const std::string &path) {
    std::string out;
    if (FILE *p = ::popen(("sha256sum '" + path + "'").c_str(), "r")) {
        char buffer[256];
        while (std::fgets(buffer, sizeof buffer, p)) out += buffer;
        ::pclose(p);
    }
    return out.substr(0, out.find(' '));
}

// A private copy of a test plugin in `dir`/plugins, mode 0755.
std::string copy_plugin(const TempDir &dir, const std::string &from, const std::string &name) {
    fs::create_directories(dir / "plugins");
    const std::string to = dir / ("plugins/" + name);
    fs::copy_file(from, to, fs::copy_options::overwrite_existing);
    ::chmod(to.c_str(), 0755);
    ::chmod((dir / "plugins").c_str(), 0755);
    return to;
}

// Replaces `path` by `from` the way an install does (a new file renamed over
// it): what a process has mapped stays intact.
void replace_file(const std::string &from, const std::string &path) {
    fs::copy_file(from, path + ".new", fs::copy_options::overwrite_existing);
    ::chmod((path + ".new").c_str(), 0755);
    fs::rename(path + ".new", path);
}

const std::string kTestPlugins = SLUICE_TEST_PLUGIN_DIR;
const std::string kSwapV1 = std::string(SLUICE_SWAP_PLUGIN_DIR) + "/v1/c_tag.so";
const std::string kSwapV2 = std::string(SLUICE_SWAP_PLUGIN_DIR) + "/v2/c_tag.so";

std::string tag_manifest(const std::string &extra_top = "", const std::string &tag_stage_extra = "") {
    return R"({"name":"trust",)" + extra_top + R"("plugin_dirs":["plugins"],"stages":[
      {"id":"in","kind":"extractor","plugin":"generate","config":{"count":10}},
      {"id":"tag","kind":"transformer","plugin":"c_tag")" + tag_stage_extra + R"(},
      {"id":"out","kind":"loader","plugin":"null"}]})";
}

} // namespace

TEST(TrustedPlugins, APluginFileOthersCanWriteIsRefusedUnlessAllowed) {
    TempDir dir;
    const std::string lib = copy_plugin(dir, kTestPlugins + "/c_tag.so", "c_tag.so");
    const std::string m = dir.write("m.json", tag_manifest());
    EXPECT_EQ(run_sluice({"validate", m}).exit_code, 0) << "a file only its owner writes loads";

    ::chmod(lib.c_str(), 0666);
    for (const char *command : {"validate", "run"}) {
        ProcessResult r = run_sluice({command, m});
        EXPECT_EQ(r.exit_code, 2) << command << ": " << r.err;
        EXPECT_NE(r.err.find(m + ": /stages/1/plugin: no transformer named 'c_tag'"), std::string::npos) << r.err;
        EXPECT_NE(r.err.find("refused " + lib + ": refused to load: the file " + lib +
                             " is writable by group and others (mode 0666, owner "),
                  std::string::npos)
            << r.err;
        EXPECT_NE(r.err.find("chmod go-w '" + lib + "', or run with --allow-untrusted-plugins"), std::string::npos) << r.err;
    }
    // The override, on the command line or in the manifest: loaded, warned.
    ProcessResult allowed = run_sluice({"run", m, "--allow-untrusted-plugins"});
    EXPECT_EQ(allowed.exit_code, 0) << allowed.err;
    EXPECT_NE(allowed.err.find("is writable by group and others (mode 0666"), std::string::npos) << allowed.err;
    EXPECT_NE(allowed.err.find("(loaded anyway: untrusted plugins are allowed)"), std::string::npos) << allowed.err;
    const std::string m2 = dir.write("m2.json", tag_manifest(R"("allow_untrusted_plugins":true,)"));
    EXPECT_EQ(run_sluice({"validate", m2}).exit_code, 0);
    // `sluice plugins` lists it as refused, or with the override.
    ProcessResult listing = run_sluice({"plugins", "--path", dir / "plugins"});
    EXPECT_NE(listing.out.find("not a usable plugin: " + lib + ": refused to load"), std::string::npos) << listing.out;
    listing = run_sluice({"plugins", "--path", dir / "plugins", "--allow-untrusted-plugins"});
    EXPECT_NE(listing.out.find("c_tag (transformer)"), std::string::npos) << listing.out;
}

TEST(TrustedPlugins, ADirectoryOthersCanWriteIsRefusedUnlessItIsSticky) {
    TempDir dir;
    copy_plugin(dir, kTestPlugins + "/c_tag.so", "c_tag.so");
    const std::string plugins = fs::canonical(dir / "plugins").string();
    const std::string m = dir.write("m.json", tag_manifest());
    ::chmod(plugins.c_str(), 0777);
    ProcessResult r = run_sluice({"validate", m});
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_NE(r.err.find("refused to load: its directory " + plugins + " is writable by group and others (mode 0777"),
              std::string::npos) << r.err;
    // Named by path: the same check, reported on the stage's "library".
    const std::string lib_manifest = dir.write("lib.json", R"({"name":"trust","stages":[
      {"id":"in","kind":"extractor","plugin":"generate","config":{"count":10}},
      {"id":"tag","kind":"transformer","plugin":"c_tag","library":"plugins/c_tag.so"},
      {"id":"out","kind":"loader","plugin":"null"}]})");
    r = run_sluice({"validate", lib_manifest});
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_NE(r.err.find(lib_manifest + ": /stages/1/library: " + dir.path()), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("its directory " + plugins + " is writable"), std::string::npos) << r.err;
    // With the sticky bit others cannot rename or remove the file (/tmp).
    ::chmod(plugins.c_str(), 01777);
    EXPECT_EQ(run_sluice({"validate", m}).exit_code, 0);
    EXPECT_EQ(run_sluice({"validate", lib_manifest}).exit_code, 0);
}

TEST(PinnedPlugins, AHashMismatchIsRefusedNamingBothHashes) {
    TempDir dir;
    const std::string lib = copy_plugin(dir, kTestPlugins + "/c_tag.so", "c_tag.so");
    const std::string zero(64, '0');
    // Found by name in the plugin directories, and named by path.
    const std::string by_name = dir.write("m.json", tag_manifest("", R"(,"sha256":")" + zero + "\""));
    const std::string by_path = dir.write("p.json", R"({"name":"pin","stages":[
      {"id":"in","kind":"extractor","plugin":"generate","config":{"count":10}},
      {"id":"tag","kind":"transformer","plugin":"c_tag","library":"plugins/c_tag.so","sha256":")" + zero + R"("},
      {"id":"out","kind":"loader","plugin":"null"}]})");
    for (const std::string &m : {by_name, by_path}) {
        ProcessResult r = run_sluice({"run", m});
        EXPECT_EQ(r.exit_code, 2) << r.err;
        EXPECT_NE(r.err.find(m + ": /stages/1/sha256: " + (m == by_name ? fs::canonical(lib).string() : dir.path())),
                  std::string::npos) << r.err;
        EXPECT_NE(r.err.find("its sha256 is " + sha256sum(lib) + ", but the manifest pins " + zero), std::string::npos)
            << r.err;
    }
    ProcessResult bad = run_sluice({"validate", dir.write("bad.json", tag_manifest("", R"(,"sha256":"abc")"))});
    EXPECT_EQ(bad.exit_code, 2);
    EXPECT_NE(bad.err.find("/stages/1/sha256: expected the library's SHA-256 as 64 hex digits"), std::string::npos) << bad.err;
}

TEST(PinnedPlugins, PinWritesTheHashesAndAPinnedManifestLoadsOnlyThatFile) {
    TempDir dir;
    const std::string lib = copy_plugin(dir, kSwapV1, "c_tag.so");
    const std::string m = dir.write("m.json", tag_manifest());
    // Printed first (nothing changes), then written.
    ProcessResult printed = run_sluice({"pin", m});
    ASSERT_EQ(printed.exit_code, 0) << printed.err;
    bj::value pinned = bj::parse(printed.out);
    EXPECT_EQ(pinned.at("stages").at(1).at("sha256").as_string(), sha256sum(lib));
    const std::string bundled = fs::path(sluice_binary()).parent_path().parent_path() / "lib/sluice/plugins";
    EXPECT_EQ(pinned.at("stages").at(0).at("sha256").as_string(), sha256sum(bundled + "/sluice-generate.so"));
    EXPECT_NE(printed.err.find("tag: " + fs::canonical(lib).string() + " sha256 " + sha256sum(lib)), std::string::npos)
        << printed.err;
    EXPECT_EQ(bj::parse(read_file(m)).at("stages").at(1).as_object().count("sha256"), 0u) << "not written without --write";
    ASSERT_EQ(run_sluice({"pin", m, "--write"}).exit_code, 0);
    EXPECT_EQ(bj::parse(read_file(m)).at("stages").at(1).at("sha256").as_string(), sha256sum(lib));
    ProcessResult valid = run_sluice({"validate", m});
    ASSERT_EQ(valid.exit_code, 0) << valid.err;
    EXPECT_NE(valid.out.find("library " + fs::canonical(lib).string() + " sha256 " + sha256sum(lib) + " (pinned)"),
              std::string::npos) << valid.out;
    // `sluice plugins --json` gives the same hashes.
    ProcessResult listing = run_sluice({"plugins", "--json", "--path", dir / "plugins"});
    bool listed = false;
    const bj::value plugins = bj::parse(listing.out);
    for (const auto &p : plugins.at("plugins").as_array())
        if (p.at("name").as_string() == "c_tag") {
            EXPECT_EQ(p.at("sha256").as_string(), sha256sum(lib));
            listed = true;
        }
    EXPECT_TRUE(listed) << listing.out;

    // Another build put in its place is refused ...
    replace_file(kSwapV2, lib);
    ProcessResult changed = run_sluice({"run", m});
    EXPECT_EQ(changed.exit_code, 2);
    EXPECT_NE(changed.err.find("its sha256 is " + sha256sum(kSwapV2) + ", but the manifest pins " + sha256sum(kSwapV1)),
              std::string::npos) << changed.err;
    // ... and with both builds on the search path, the pinned one is loaded
    // even where the other comes first.
    fs::create_directories(dir / "v1");
    fs::copy_file(kSwapV1, dir / "v1/c_tag.so");
    std::string both = read_file(m);
    both.replace(both.find("\"plugins\""), 9, "\"plugins\",\"v1\"");
    const std::string m2 = dir.write("both.json", both);
    ProcessResult found = run_sluice({"validate", m2});
    ASSERT_EQ(found.exit_code, 0) << found.err;
    EXPECT_NE(found.out.find("library " + fs::canonical(dir / "v1/c_tag.so").string() + " sha256 " + sha256sum(kSwapV1)),
              std::string::npos) << found.out;
}

TEST(PinnedPlugins, ALiveReloadChecksThePinAgain) {
    TempDir dir;
    const std::string lib = copy_plugin(dir, kSwapV1, "c_tag.so");
    const int ingest = free_loopback_port();
    const std::string m = dir.write("m.json", R"({"name":"reload_pin","plugin_dirs":["plugins"],"stages":[
      {"id":"in","kind":"extractor","plugin":"http","config":{"port":)" + std::to_string(ingest) + R"(}},
      {"id":"tag","kind":"transformer","plugin":"c_tag","sha256":")" + sha256sum(lib) + R"("},
      {"id":"out","kind":"loader","plugin":"null"}]})");
    ChildProcess p({sluice_binary(), "run", m, "--admin", "127.0.0.1:0"});
    const int admin = port_after(p, "admin endpoint listening on http://127.0.0.1:");
    ASSERT_GT(admin, 0) << p.err_so_far();
    ASSERT_TRUE(eventually([&] { return http_request(admin, "GET", "/ready", "", {}, "", 5).status == 200; }, 30s));
    replace_file(kSwapV2, lib);
    HttpReply r = http_request(admin, "POST", "/reload", "", {}, "", 30);
    EXPECT_EQ(r.status, 409) << r.body;
    EXPECT_NE(r.body.find("but the manifest pins " + sha256sum(kSwapV1)), std::string::npos) << r.body;
    // The pipeline runs on with the pinned build.
    EXPECT_EQ(http_request(ingest, "POST", "/ingest", "{\"a\":1}\n").status, 202);
    p.signal(SIGTERM);
    EXPECT_EQ(p.wait(60s).exit_code, 0) << p.err_so_far();
}

// The worker process of an isolated stage checks the file again just before
// it loads it: a file changed after the host checked it (here between two
// workers: the first dies on a record, the next one loads the file anew) is
// refused there too.
TEST(TrustedPlugins, AnIsolatedStagesWorkerChecksTheFileItLoads) {
    for (const std::string change : {"made writable by others", "replaced by another build"}) {
        SCOPED_TRACE(change);
        TempDir dir;
        const std::string lib = copy_plugin(dir, kTestPlugins + "/faulty.so", "faulty.so");
        const std::string m = dir.write("m.json", R"({"name":"worker_check","plugin_dirs":["plugins",")" + kTestPlugins +
                                                      R"("],"stages":[
          {"id":"in","kind":"extractor","plugin":"generate","batch_size":50,"config":{"count":4000}},
          {"id":"pace","kind":"transformer","plugin":"fault","config":{"slow_ms":25}},
          {"id":"shape","kind":"transformer","plugin":"faulty","isolation":"process","sha256":")" +
                                                      sha256sum(lib) + R"(",
           "config":{"fault":"crash","match":"\"id\":3000,"}},
          {"id":"out","kind":"loader","plugin":"null"}]})");
        ChildProcess p({sluice_binary(), "run", m, "--admin", "127.0.0.1:0"});
        const int admin = port_after(p, "admin endpoint listening on http://127.0.0.1:");
        ASSERT_GT(admin, 0) << p.err_so_far();
        // Once the first worker runs (it loaded the file as it was) ...
        ASSERT_TRUE(eventually(
            [&] {
                HttpReply s = http_request(admin, "GET", "/status", "", {}, "", 5);
                if (s.status != 200) return false;
                const bj::value status = bj::parse(s.body);
                for (const auto &st : status.at("stages").as_array())
                    if (st.at("id").as_string() == "shape") return st.at("in").to_number<uint64_t>() > 0;
                return false;
            },
            30s));
        // ... the file changes; record 3000 kills that worker, the next one
        // refuses the file.
        if (change == "made writable by others") ::chmod(lib.c_str(), 0666);
        else replace_file(kTestPlugins + "/c_tag.so", lib);
        ProcessResult r = p.wait(120s);
        // The records of the batch that killed the worker take the error
        // path: no worker runs the changed file.
        const std::string expected = "not processed: a new worker could not be started: " +
                                     std::string(change == "made writable by others"
                                         ? lib + ": refused to load: the file " + fs::canonical(lib).string() +
                                               " is writable by group and others"
                                         : lib + ": its sha256 is " + sha256sum(kTestPlugins + "/c_tag.so") +
                                               ", but the manifest pins ");
        EXPECT_NE(r.err.find(expected), std::string::npos) << r.err;
    }
}
