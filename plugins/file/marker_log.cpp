#include "marker_log.hpp"

#include "../common/sync_directory.hpp"

#include <sluice/json.hpp>
#include <sluice/plugin.hpp>

#include <boost/json.hpp>

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <unistd.h>

namespace sluice::plugins {

namespace bj = boost::json;

namespace {
// A long-running append rewrites its log now and then so it stays small.
constexpr uint64_t kRewriteEvery = 4096;

std::string errno_text() { return std::strerror(errno); }

bool write_all(int fd, std::string_view text) {
    while (!text.empty()) {
        ssize_t n = ::write(fd, text.data(), text.size());
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return false;
        text.remove_prefix(size_t(n));
    }
    return true;
}
} // namespace

MarkerLog::~MarkerLog() {
    if (fd_ >= 0) ::close(fd_);
}

std::string MarkerLog::line(uint64_t length, std::string_view marker) {
    std::string out = "{\"length\":" + std::to_string(length) + ",\"marker\":";
    json::append_string(out, marker);
    return out + "}\n";
}

std::optional<MarkerLog::Entry> MarkerLog::recover(uint64_t output_size) {
    std::lock_guard lock(mutex_);
    std::optional<Entry> last;
    std::ifstream in(path_, std::ios::binary);
    if (in) {
        std::string text;
        while (std::getline(in, text)) {
            if (in.eof()) break; // a last line without its line break was torn by a crash
            boost::system::error_code ec;
            bj::value v = bj::parse(text, ec);
            const bj::object *o = ec ? nullptr : v.if_object();
            const bj::value *length = o ? o->if_contains("length") : nullptr;
            const bj::value *marker = o ? o->if_contains("marker") : nullptr;
            if (!length || !length->is_int64() || length->get_int64() < 0 || !marker || !marker->is_string())
                throw Error(path_ + ": not a marker log Sluice wrote (line: " + text.substr(0, 100) +
                            "); move it away to append without exactly-once recovery");
            // An entry for bytes the output does not have was synced after
            // them, so it cannot be missing its bytes... unless the output
            // was changed by hand: then trust only what fits.
            if (uint64_t(length->get_int64()) <= output_size)
                last = Entry{uint64_t(length->get_int64()), std::string(marker->get_string())};
        }
    }
    rewrite(last);
    return last;
}

void MarkerLog::rewrite(const std::optional<Entry> &last) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
    const std::string tmp = path_ + ".tmp";
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) throw EnvironmentError("cannot write " + tmp + ": " + errno_text());
    std::string text = last ? line(last->length, last->marker) : std::string();
    bool ok = write_all(fd, text) && (!fsync_ || ::fsync(fd) == 0);
    int err = errno;
    ::close(fd);
    if (!ok || ::rename(tmp.c_str(), path_.c_str()) != 0) {
        if (ok) err = errno;
        ::unlink(tmp.c_str());
        throw EnvironmentError("cannot rewrite " + path_ + ": " + std::strerror(err));
    }
    if (fsync_) sync_directory_of(path_);
    fd_ = ::open(path_.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
    if (fd_ < 0) throw EnvironmentError("cannot open " + path_ + ": " + errno_text());
    size_ = text.size();
    entries_ = 0;
}

void MarkerLog::append(uint64_t length, std::string_view marker, bool sync_now) {
    std::lock_guard lock(mutex_);
    if (entries_ >= kRewriteEvery) {
        rewrite(Entry{length, std::string(marker)}); // synced
        return;
    }
    const std::string text = line(length, marker);
    if (!write_all(fd_, text) || (sync_now && fsync_ && ::fdatasync(fd_) != 0)) {
        std::string message = "cannot write " + path_ + ": " + errno_text();
        if (::ftruncate(fd_, off_t(size_)) != 0)
            throw FatalError(message + ", and cutting off the partial line failed too: " + errno_text());
        throw EnvironmentError(message);
    }
    size_ += text.size();
    ++entries_;
}

void MarkerLog::sync() {
    std::lock_guard lock(mutex_);
    if (fd_ >= 0 && fsync_ && ::fdatasync(fd_) != 0) throw EnvironmentError("fdatasync of " + path_ + " failed: " + errno_text());
}

} // namespace sluice::plugins
