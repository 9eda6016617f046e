#include "plugin_trust.hpp"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

namespace fs = std::filesystem;

namespace sluice {

namespace {

std::string user_name(uid_t uid) {
    if (const passwd *pw = ::getpwuid(uid)) return pw->pw_name;
    return "uid " + std::to_string(uid);
}

std::string octal_mode(mode_t mode) {
    char text[8];
    std::snprintf(text, sizeof text, "%04o", unsigned(mode & 07777));
    return text;
}

// What is wrong with one file or directory, or "".
std::string problem_with(const fs::path &path, bool directory, const std::string &what) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) return what + " " + path.string() + " cannot be examined: " + std::strerror(errno);
    const uid_t me = ::geteuid();
    const std::string owner = user_name(st.st_uid);
    const std::string quoted = "'" + path.string() + "'";
    if (st.st_uid != 0 && st.st_uid != me)
        return what + " " + path.string() + " is owned by " + owner + ", not by root" +
               (me == 0 ? std::string() : " or by " + user_name(me) + " who runs sluice") + " (mode " +
               octal_mode(st.st_mode) + "); whoever owns it can change the code sluice runs: chown " + user_name(me) +
               " " + quoted + ", or run with --allow-untrusted-plugins";
    const bool sticky_directory = directory && (st.st_mode & S_ISVTX);
    if ((st.st_mode & (S_IWGRP | S_IWOTH)) && !sticky_directory) {
        const char *who = (st.st_mode & S_IWOTH) ? ((st.st_mode & S_IWGRP) ? "group and others" : "others") : "its group";
        return what + " " + path.string() + " is writable by " + who + " (mode " + octal_mode(st.st_mode) + ", owner " +
               owner + "); anyone who can write it can run code inside this pipeline: chmod go-w " + quoted +
               ", or run with --allow-untrusted-plugins";
    }
    return {};
}

} // namespace

std::string untrusted_plugin_file(const std::string &file, const std::string &up_to) {
    std::error_code ec;
    // The file that will be loaded, wherever a link points.
    const fs::path real = fs::canonical(file, ec);
    if (ec) return file + ": cannot be examined: " + ec.message();
    const std::string prefix = file + ": refused to load: ";
    if (std::string p = problem_with(real, false, "the file"); !p.empty()) return prefix + p;
    fs::path top = up_to.empty() ? real.parent_path() : fs::canonical(up_to, ec);
    if (ec) top = real.parent_path();
    // Up to the plugin directory when the file is in it, else its own.
    const auto [end, unused] = std::mismatch(top.begin(), top.end(), real.begin(), real.end());
    if (end != top.end()) top = real.parent_path();
    for (fs::path dir = real.parent_path();; dir = dir.parent_path()) {
        if (std::string p = problem_with(dir, true, "its directory"); !p.empty()) return prefix + p;
        if (dir == top || dir == dir.parent_path()) break;
    }
    return {};
}

} // namespace sluice
