#include "worker_protocol.hpp"

#include "length_prefixed.hpp"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/socket.h>
#include <unistd.h>

namespace sluice::worker {

SharedRegion::~SharedRegion() {
    if (base_) ::munmap(base_, kWindow);
    if (fd_ >= 0) ::close(fd_);
}

std::string SharedRegion::map() {
    void *p = ::mmap(nullptr, kWindow, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, fd_, 0);
    if (p == MAP_FAILED) return std::string("cannot map shared memory: ") + std::strerror(errno);
    base_ = static_cast<char *>(p);
    return {};
}

std::string SharedRegion::create(const char *name) {
    fd_ = ::memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd_ < 0) return std::string("cannot create shared memory: ") + std::strerror(errno);
    // It may grow but never shrink: a worker that truncated it under the
    // host's reads would kill the host with SIGBUS.
    if (::fcntl(fd_, F_ADD_SEALS, F_SEAL_SHRINK) != 0)
        return std::string("cannot seal shared memory: ") + std::strerror(errno);
    return map();
}

std::string SharedRegion::attach(int fd) {
    fd_ = fd;
    return map();
}

size_t SharedRegion::file_size() const {
    struct stat st {};
    return ::fstat(fd_, &st) == 0 && st.st_size > 0 ? size_t(st.st_size) : 0;
}

bool SharedRegion::reserve(size_t bytes) {
    if (bytes > kWindow) return false;
    // What the file holds now (the other side may have grown it).
    off_t now = ::lseek(fd_, 0, SEEK_END);
    if (now >= 0) size_ = size_t(now);
    if (bytes <= size_) return true;
    size_t grow = std::max(bytes, std::min(kWindow, std::max<size_t>(size_ * 2, 1 << 20)));
    if (::ftruncate(fd_, off_t(grow)) != 0) return false;
    size_ = grow;
    return true;
}

bool SharedRegion::write(size_t offset, std::string_view bytes) {
    if (!reserve(offset + bytes.size())) return false;
    if (!bytes.empty()) std::memcpy(base_ + offset, bytes.data(), bytes.size());
    return true;
}

bool send_message(int fd, const Header &h, std::string_view text, bool wait) {
    char buf[kMaxMessage];
    Header head = h;
    head.text_len = uint32_t(std::min(text.size(), kMaxText));
    std::memcpy(buf, &head, sizeof head);
    if (head.text_len) std::memcpy(buf + sizeof head, text.data(), head.text_len);
    for (;;) {
        ssize_t n = ::send(fd, buf, sizeof head + head.text_len, MSG_NOSIGNAL | (wait ? 0 : MSG_DONTWAIT));
        if (n >= 0) return true;
        if (errno != EINTR) return false;
    }
}

bool receive_message(int fd, Header &h, std::string &text) {
    char buf[kMaxMessage];
    ssize_t n;
    do n = ::recv(fd, buf, sizeof buf, 0);
    while (n < 0 && errno == EINTR);
    if (n < ssize_t(sizeof(Header))) return false;
    std::memcpy(&h, buf, sizeof h);
    if (h.text_len > size_t(n) - sizeof h) return false;
    text.assign(buf + sizeof h, h.text_len);
    return true;
}

using length_prefixed::put;

std::string InitArgs::encode() const {
    std::string out;
    for (const std::string *s : {&library, &plugin, &stage_id, &config_json, &base_dir, &sha256}) put(out, *s);
    for (uint32_t v : {kind, worker_index, worker_count, log_level, check_trust}) put(out, v);
    return out;
}

bool InitArgs::decode(std::string_view bytes) {
    length_prefixed::Reader c{bytes};
    for (std::string *s : {&library, &plugin, &stage_id, &config_json, &base_dir, &sha256}) *s = c.str();
    for (uint32_t *v : {&kind, &worker_index, &worker_count, &log_level, &check_trust}) *v = c.u32();
    return c.ok;
}

} // namespace sluice::worker
