// Streams one file through a buffer that always has SIMDJSON_PADDING
// readable bytes after its data, so records can be validated in place.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace sluice::plugins {

class SourceReader {
public:
    static constexpr size_t kPadding = 64;

    SourceReader(size_t chunk_bytes, size_t max_record_bytes);
    ~SourceReader();
    SourceReader(const SourceReader &) = delete;
    SourceReader &operator=(const SourceReader &) = delete;

    // Opens `path`; on failure returns false with `error` set.
    bool open(const std::string &path, std::string &error);
    void close();
    bool is_open() const { return fd_ >= 0; }

    // Unconsumed bytes. Valid until the next fill().
    const char *data() const { return buf_.data() + begin_; }
    size_t size() const { return end_ - begin_; }
    void consume(size_t n) { begin_ += n; offset_ += n; }
    // File offset of data().
    uint64_t offset() const { return offset_; }
    // Drops what is buffered and goes on reading at `offset`. False with
    // `error` set on failure.
    bool seek(uint64_t offset, std::string &error);
    // Size of the open file now, or -1.
    int64_t file_size() const;
    bool eof() const { return eof_; }

    enum class Fill { more, eof, too_large, error };
    // Reads more bytes after the unconsumed ones. `too_large` means the
    // unconsumed bytes already fill max_record_bytes: no record fits.
    Fill fill(std::string &error);

private:
    std::vector<char> buf_;
    size_t begin_ = 0, end_ = 0;
    size_t chunk_, max_record_;
    uint64_t offset_ = 0;
    int fd_ = -1;
    bool eof_ = false;
};

} // namespace sluice::plugins
