// The security checks that need no server: the constant-time secret
// comparison and the per-address throttle (sluice/secret_check.hpp), the
// trust check of plugin files (host/plugin_trust) and file hashes
// (host/file_sha256).
#include "file_sha256.hpp"
#include "plugin_trust.hpp"
#include "temp_dir.hpp"

#include <sluice/secret_check.hpp>

#include <gtest/gtest.h>

#include <filesystem>
#include <sys/stat.h>
#include <unistd.h>

using namespace sluice;
using sluice::test::TempDir;
using namespace std::chrono_literals;

TEST(SecretCheck, SecretsAreEqualOnlyWhenEveryByteAndTheLengthAre) {
    EXPECT_TRUE(secrets_equal("Bearer s3cret", "Bearer s3cret"));
    EXPECT_FALSE(secrets_equal("Bearer s3creT", "Bearer s3cret")) << "last byte";
    EXPECT_FALSE(secrets_equal("bearer s3cret", "Bearer s3cret")) << "first byte";
    EXPECT_FALSE(secrets_equal("Bearer s3cre", "Bearer s3cret")) << "a prefix";
    EXPECT_FALSE(secrets_equal("Bearer s3cretX", "Bearer s3cret")) << "longer";
    EXPECT_FALSE(secrets_equal("Bearer s3cretBearer s3cret", "Bearer s3cret")) << "the secret twice";
    EXPECT_FALSE(secrets_equal("", "Bearer s3cret"));
    EXPECT_FALSE(secrets_equal("", "")) << "no secret matches nothing, not everything";
    EXPECT_FALSE(secrets_equal("x", ""));
    std::string with_nul("Bearer s3cret\0", 14);
    EXPECT_FALSE(secrets_equal(with_nul, "Bearer s3cret"));
}

TEST(SecretCheck, AnAddressThatKeepsGuessingIsRefusedUntilTheWindowPasses) {
    AuthFailureThrottle throttle(3, 60s);
    const auto t0 = AuthFailureThrottle::Clock::now();
    for (int i = 0; i < 3; ++i) {
        EXPECT_FALSE(throttle.blocked("10.0.0.1", t0 + std::chrono::seconds(i)));
        throttle.failed("10.0.0.1", t0 + std::chrono::seconds(i));
    }
    EXPECT_TRUE(throttle.blocked("10.0.0.1", t0 + 3s));
    EXPECT_EQ(throttle.retry_after_s("10.0.0.1", t0 + 3s), 59) << "a minute after its last failure";
    EXPECT_FALSE(throttle.blocked("10.0.0.2", t0 + 3s)) << "other addresses are not affected";
    EXPECT_TRUE(throttle.blocked("10.0.0.1", t0 + 61s));
    EXPECT_FALSE(throttle.blocked("10.0.0.1", t0 + 62s)) << "the window passed";
    // A success forgets the failures.
    throttle.failed("10.0.0.3", t0);
    throttle.failed("10.0.0.3", t0);
    throttle.succeeded("10.0.0.3");
    throttle.failed("10.0.0.3", t0);
    throttle.failed("10.0.0.3", t0);
    EXPECT_FALSE(throttle.blocked("10.0.0.3", t0));
}

TEST(SecretCheck, TheThrottleKeepsBoundedMemoryUnderAFloodOfAddresses) {
    AuthFailureThrottle throttle(2, 60s, 100);
    const auto t0 = AuthFailureThrottle::Clock::now();
    throttle.failed("victim", t0 + 10s);
    throttle.failed("victim", t0 + 10s);
    for (int i = 0; i < 10000; ++i) throttle.failed("10.1." + std::to_string(i), t0 + std::chrono::milliseconds(i));
    // Memory stayed within 100 addresses: the oldest went first, and the
    // address blocked most recently is still blocked.
    EXPECT_LE(throttle.tracked_addresses(), 100u);
    EXPECT_TRUE(throttle.blocked("victim", t0 + 12s));
}

TEST(FileSha256, IsTheSha256OfTheBytes) {
    TempDir dir;
    EXPECT_EQ(file_sha256(dir.write("abc", "abc")), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    EXPECT_EQ(file_sha256(dir.write("empty", "")), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    EXPECT_THROW(file_sha256(dir / "missing"), std::runtime_error);
    EXPECT_TRUE(is_sha256_hex("BA7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"));
    EXPECT_FALSE(is_sha256_hex("ba7816bf"));
    EXPECT_FALSE(is_sha256_hex(std::string(63, 'a') + "g"));
}

TEST(PluginTrust, FilesAndDirectoriesOthersCanWriteAreRefusedNamingTheFix) {
    TempDir dir;
    const std::string plugins = dir / "plugins";
    std::filesystem::create_directories(plugins + "/sub");
    const std::string lib = dir.write("plugins/sub/x.so", "not really a library");
    ::chmod(lib.c_str(), 0755);
    ::chmod(plugins.c_str(), 0755);
    ::chmod((plugins + "/sub").c_str(), 0755);
    EXPECT_EQ(untrusted_plugin_file(lib, plugins), "");

    ::chmod(lib.c_str(), 0666);
    std::string why = untrusted_plugin_file(lib, plugins);
    EXPECT_NE(why.find(lib + ": refused to load: the file " + lib + " is writable by group and others (mode 0666"),
              std::string::npos) << why;
    EXPECT_NE(why.find("chmod go-w '" + lib + "'"), std::string::npos) << why;
    EXPECT_NE(why.find("--allow-untrusted-plugins"), std::string::npos) << why;
    EXPECT_EQ(why.find('\n'), std::string::npos) << "one line";
    ::chmod(lib.c_str(), 0620);
    EXPECT_NE(untrusted_plugin_file(lib, plugins).find("writable by its group (mode 0620"), std::string::npos);
    ::chmod(lib.c_str(), 0755);

    // A directory between the file and the plugin directory ...
    ::chmod(plugins.c_str(), 0777);
    why = untrusted_plugin_file(lib, plugins);
    EXPECT_NE(why.find("its directory " + std::filesystem::canonical(plugins).string() + " is writable by group and others"),
              std::string::npos) << why;
    // ... unless others cannot rename or remove what is not theirs (/tmp).
    ::chmod(plugins.c_str(), 01777);
    EXPECT_EQ(untrusted_plugin_file(lib, plugins), "");
    ::chmod(plugins.c_str(), 0755);
    // Above the plugin directory is not its business.
    ::chmod(dir.path().c_str(), 0777);
    EXPECT_EQ(untrusted_plugin_file(lib, plugins), "");
    // Without a plugin directory: the file and its own directory.
    ::chmod((plugins + "/sub").c_str(), 0777);
    EXPECT_NE(untrusted_plugin_file(lib).find("its directory"), std::string::npos);
    ::chmod((plugins + "/sub").c_str(), 0755);
    ::chmod(dir.path().c_str(), 0700);

    // A link is judged by the file it points to.
    const std::string elsewhere = dir.write("elsewhere.so", "x");
    ::chmod(elsewhere.c_str(), 0666);
    std::filesystem::create_symlink(elsewhere, plugins + "/link.so");
    EXPECT_NE(untrusted_plugin_file(plugins + "/link.so", plugins).find("writable by group and others"), std::string::npos);

    if (::geteuid() == 0) {
        // Owned by another user: refused whatever its mode.
        ASSERT_EQ(::chown(lib.c_str(), 65534, 65534), 0);
        why = untrusted_plugin_file(lib, plugins);
        EXPECT_NE(why.find("is owned by nobody, not by root (mode 0755)"), std::string::npos) << why;
    }
}
