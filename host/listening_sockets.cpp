#include "listening_sockets.hpp"

#include <arpa/inet.h>
#include <dirent.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>

namespace sluice {

namespace {

// Inodes of the sockets among this process's open files.
std::set<unsigned long> socket_inodes() {
    std::set<unsigned long> inodes;
    DIR *dir = ::opendir("/proc/self/fd");
    if (!dir) return inodes;
    while (const dirent *e = ::readdir(dir)) {
        char target[64];
        const std::string link = std::string("/proc/self/fd/") + e->d_name;
        const ssize_t n = ::readlink(link.c_str(), target, sizeof target - 1);
        if (n <= 0) continue;
        target[n] = 0;
        unsigned long inode = 0;
        if (std::sscanf(target, "socket:[%lu]", &inode) == 1) inodes.insert(inode);
    }
    ::closedir(dir);
    return inodes;
}

// /proc/net/tcp writes an address as the bytes of its 32-bit words in host
// order, in hex: "0100007F:1F90" is 127.0.0.1:8080.
std::string address_text(const std::string &hex, bool v6) {
    const size_t colon = hex.find(':');
    if (colon == std::string::npos) return hex;
    unsigned char bytes[16] = {};
    const size_t words = v6 ? 4 : 1;
    for (size_t w = 0; w < words && (w + 1) * 8 <= colon; ++w) {
        const uint32_t word = uint32_t(std::stoul(hex.substr(w * 8, 8), nullptr, 16));
        std::memcpy(bytes + w * 4, &word, 4);
    }
    char text[INET6_ADDRSTRLEN] = {};
    ::inet_ntop(v6 ? AF_INET6 : AF_INET, bytes, text, sizeof text);
    const unsigned port = unsigned(std::stoul(hex.substr(colon + 1), nullptr, 16));
    return (v6 ? "[" + std::string(text) + "]" : std::string(text)) + ":" + std::to_string(port);
}

} // namespace

std::vector<std::string> listening_addresses() {
    const std::set<unsigned long> mine = socket_inodes();
    std::vector<std::string> out;
    for (const bool v6 : {false, true}) {
        std::ifstream table(v6 ? "/proc/self/net/tcp6" : "/proc/self/net/tcp");
        std::string line;
        std::getline(table, line); // the header
        while (std::getline(table, line)) {
            std::istringstream fields(line);
            std::string slot, local, remote, state, queues, timer, retransmits, uid, timeout;
            unsigned long inode = 0;
            fields >> slot >> local >> remote >> state >> queues >> timer >> retransmits >> uid >> timeout >> inode;
            if (state == "0A" && mine.count(inode)) out.push_back(address_text(local, v6)); // 0A: LISTEN
        }
    }
    return out;
}

} // namespace sluice
