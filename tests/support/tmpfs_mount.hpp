// A small tmpfs mounted for one test: a real file system that fills up, for
// the disk-full tests. Mounting needs root (CI runs as root); elsewhere
// mounted() is false and the test skips itself saying why.
#pragma once

#include <filesystem>
#include <string>

#include <sys/mount.h>
#include <unistd.h>

namespace sluice::test {

class TmpfsMount {
public:
    TmpfsMount(const std::string &dir, unsigned size_kib) : dir_(dir) {
        std::filesystem::create_directories(dir_);
        if (::geteuid() != 0) {
            why_ = "needs root to mount a tmpfs";
            return;
        }
        if (::mount("tmpfs", dir_.c_str(), "tmpfs", 0, options(size_kib).c_str()) != 0) {
            why_ = "cannot mount a tmpfs here";
            return;
        }
        mounted_ = true;
    }
    ~TmpfsMount() {
        if (mounted_) ::umount2(dir_.c_str(), MNT_DETACH);
    }
    TmpfsMount(const TmpfsMount &) = delete;
    TmpfsMount &operator=(const TmpfsMount &) = delete;

    bool mounted() const { return mounted_; }
    const std::string &why_not() const { return why_; }
    // Frees space the way an operator would: makes the file system larger,
    // keeping what is on it.
    bool grow(unsigned size_kib) {
        return ::mount("tmpfs", dir_.c_str(), "tmpfs", MS_REMOUNT, options(size_kib).c_str()) == 0;
    }

private:
    static std::string options(unsigned size_kib) { return "size=" + std::to_string(size_kib) + "k"; }
    std::string dir_, why_;
    bool mounted_ = false;
};

} // namespace sluice::test
