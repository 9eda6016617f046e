#include "source_reader.hpp"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace sluice::plugins {

SourceReader::SourceReader(size_t chunk_bytes, size_t max_record_bytes)
    : chunk_(chunk_bytes), max_record_(max_record_bytes) {}

SourceReader::~SourceReader() { close(); }

bool SourceReader::open(const std::string &path, std::string &error) {
    close();
    fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd_ < 0) {
        error = std::strerror(errno);
        return false;
    }
#ifdef POSIX_FADV_SEQUENTIAL
    posix_fadvise(fd_, 0, 0, POSIX_FADV_SEQUENTIAL);
#endif
    begin_ = end_ = 0;
    offset_ = 0;
    eof_ = false;
    if (buf_.size() < chunk_ + kPadding) buf_.assign(chunk_ + kPadding, 0);
    return true;
}

bool SourceReader::seek(uint64_t offset, std::string &error) {
    if (::lseek(fd_, off_t(offset), SEEK_SET) < 0) {
        error = std::strerror(errno);
        return false;
    }
    begin_ = end_ = 0;
    offset_ = offset;
    eof_ = false;
    return true;
}

int64_t SourceReader::file_size() const {
    struct stat st {};
    if (fd_ < 0 || ::fstat(fd_, &st) != 0) return -1;
    return int64_t(st.st_size);
}

void SourceReader::close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
}

SourceReader::Fill SourceReader::fill(std::string &error) {
    if (eof_) return Fill::eof;
    size_t pending = end_ - begin_;
    if (pending >= max_record_) return Fill::too_large;
    // Move what is left to the front, then grow if still short of a chunk.
    if (begin_ > 0) {
        std::memmove(buf_.data(), buf_.data() + begin_, pending);
        begin_ = 0;
        end_ = pending;
    }
    size_t capacity = buf_.size() - kPadding;
    if (capacity - end_ < chunk_ / 2) {
        size_t grown = std::min(std::max(capacity * 2, end_ + chunk_), max_record_ + chunk_);
        buf_.resize(grown + kPadding);
        capacity = grown;
    }
    ssize_t n;
    do {
        n = ::read(fd_, buf_.data() + end_, capacity - end_);
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
        error = std::strerror(errno);
        return Fill::error;
    }
    if (n == 0) {
        eof_ = true;
        return Fill::eof;
    }
    end_ += size_t(n);
    std::memset(buf_.data() + end_, 0, kPadding);
    return Fill::more;
}

} // namespace sluice::plugins
