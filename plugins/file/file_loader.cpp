#include "file_loader.hpp"

#include "../common/sync_directory.hpp"
#include "csv.hpp"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <signal.h>
#include <filesystem>
#include <sys/stat.h>
#include <unistd.h>

namespace sluice::plugins {

namespace fs = std::filesystem;
namespace bj = boost::json;

namespace {
constexpr size_t kWriteChunk = 1 << 20;

std::string errno_text() { return std::strerror(errno); }
} // namespace

FileLoader::FileLoader(const Context &ctx) : host_(ctx.host) {
    json::Config c(ctx.config_json);
    path_ = ctx.resolve_path(c.required_string("path"));
    std::string f = c.string("format");
    if (f == "auto") csv_ = path_.size() >= 4 && path_.compare(path_.size() - 4, 4, ".csv") == 0;
    else if (f == "csv") csv_ = true;
    else if (f != "ndjson") c.fail("format", "expected auto, ndjson or csv");
    columns_ = c.strings("columns");
    delimiter_ = csv_delimiter(c);
    header_ = c.boolean("header");
    append_ = c.boolean("append");
    fsync_ = c.boolean("fsync");
    create_dirs_ = c.boolean("create_dirs");
    attributes_field_ = c.string("attributes_field");
}

// The payload (a JSON object) with one more field holding the attributes.
void FileLoader::append_with_attributes(const sluice_record &r) {
    std::string_view p(r.payload, r.payload_len);
    while (!p.empty() && (p.back() == ' ' || p.back() == '\n' || p.back() == '\r' || p.back() == '\t')) p.remove_suffix(1);
    if (r.attr_count == 0 || p.size() < 2 || p.front() != '{' || p.back() != '}') {
        buffer_.append(p);
        return;
    }
    buffer_.append(p.substr(0, p.size() - 1));
    if (p.find_first_not_of(" \t\r\n", 1) != p.size() - 1) buffer_ += ',';
    json::append_string(buffer_, attributes_field_);
    buffer_ += ":{";
    for (uint32_t i = 0; i < r.attr_count; ++i) {
        if (i) buffer_ += ',';
        json::append_string(buffer_, {r.attrs[i].key, r.attrs[i].key_len});
        buffer_ += ':';
        json::append_string(buffer_, {r.attrs[i].value, r.attrs[i].value_len});
    }
    buffer_ += "}}";
}

FileLoader::~FileLoader() { stop(); }

void FileLoader::start() {
    fs::path p(path_);
    if (create_dirs_ && p.has_parent_path() && !fs::exists(p.parent_path())) {
        std::error_code ec;
        fs::create_directories(p.parent_path(), ec);
        if (ec) throw Error("cannot create directory " + p.parent_path().string() + ": " + ec.message());
        // Said aloud: a typo in a path should not go unnoticed.
        host_.warn("created the missing directory " + p.parent_path().string() + " (create_dirs)");
    }
    if (append_) {
        fd_ = ::open(path_.c_str(), O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (fd_ < 0) throw Error("cannot open " + path_ + " for appending: " + errno_text());
        repair_tail();
        struct stat st {};
        if (::fstat(fd_, &st) != 0) throw Error("cannot stat " + path_ + ": " + errno_text());
        file_length_ = uint64_t(st.st_size);
        header_written_ = file_length_ > 0;
        return;
    }
    remove_stale_temp_files();
    // The temp file sits beside the target so the final rename is atomic.
    temp_path_ = path_ + ".tmp-" + std::to_string(::getpid());
    fd_ = ::open(temp_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd_ < 0) throw Error("cannot create " + temp_path_ + ": " + errno_text());
    buffer_.reserve(kWriteChunk + 64 * 1024);
}

void FileLoader::remove_stale_temp_files() {
    // PATH.tmp-PID of a process that is gone: a run that crashed (or was
    // killed) before its flush. Nothing in it was ever delivered.
    fs::path p(path_);
    const fs::path dir = p.has_parent_path() ? p.parent_path() : fs::path(".");
    const std::string prefix = p.filename().string() + ".tmp-";
    std::error_code ec;
    for (const auto &entry : fs::directory_iterator(dir, ec)) {
        const std::string name = entry.path().filename().string();
        if (name.size() <= prefix.size() || name.compare(0, prefix.size(), prefix) != 0) continue;
        const std::string pid = name.substr(prefix.size());
        if (pid.find_first_not_of("0123456789") != std::string::npos || pid.size() > 9) continue;
        if (::kill(pid_t(std::stol(pid)), 0) == 0 || errno != ESRCH) continue; // still running (or not ours)
        std::error_code rm;
        if (fs::remove(entry.path(), rm))
            host_.log(SLUICE_LOG_INFO, "removed " + entry.path().string() + ", left by a run that did not finish");
    }
}

void FileLoader::repair_tail() {
    struct stat st {};
    if (::fstat(fd_, &st) != 0) throw Error("cannot stat " + path_ + ": " + errno_text());
    const uint64_t size = uint64_t(st.st_size);
    if (size == 0) return;
    // Where the last complete record ends. NDJSON: after the last line
    // break, found from the end. CSV: a line break outside quotes, which only
    // a scan from the start can tell (quoted fields may hold line breaks).
    uint64_t keep = 0;
    std::vector<char> buf(1 << 16);
    if (!csv_) {
        uint64_t end = size;
        while (end > 0 && keep == 0) {
            size_t n = size_t(std::min<uint64_t>(buf.size(), end));
            if (::pread(fd_, buf.data(), n, off_t(end - n)) != ssize_t(n))
                throw Error("cannot read " + path_ + ": " + errno_text());
            for (size_t i = n; i-- > 0;)
                if (buf[i] == '\n') {
                    keep = end - n + i + 1;
                    break;
                }
            end -= n;
        }
    } else {
        bool quoted = false;
        for (uint64_t off = 0; off < size;) {
            ssize_t n = ::pread(fd_, buf.data(), buf.size(), off_t(off));
            if (n <= 0) throw Error("cannot read " + path_ + ": " + errno_text());
            for (ssize_t i = 0; i < n; ++i) {
                if (buf[size_t(i)] == '"') quoted = !quoted;
                else if (buf[size_t(i)] == '\n' && !quoted) keep = off + uint64_t(i) + 1;
            }
            off += uint64_t(n);
        }
    }
    if (keep == size) return;
    if (::ftruncate(fd_, off_t(keep)) != 0) throw Error("cannot truncate " + path_ + ": " + errno_text());
    host_.warn("cut off " + std::to_string(size - keep) + " bytes of a partial record at the end of " + path_ +
               " (left by an interrupted run; a resumed run writes that record again)");
}

void FileLoader::write_out(bool force) {
    if (buffer_.empty() || (!force && buffer_.size() < kWriteChunk)) return;
    const char *p = buffer_.data();
    size_t left = buffer_.size();
    while (left > 0) {
        ssize_t n = ::write(fd_, p, left);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            // Disk full, I/O error: the file system's fault, not the
            // records'. Cut off what this write left, keep the buffer.
            std::string message = "write to " + (temp_path_.empty() ? path_ : temp_path_) + " failed: " + errno_text();
            if (::ftruncate(fd_, off_t(file_length_)) != 0)
                throw FatalError(message + ", and cutting off the partial write failed too: " + errno_text());
            throw EnvironmentError(message);
        }
        p += n;
        left -= size_t(n);
    }
    bytes_ += buffer_.size();
    file_length_ += buffer_.size();
    buffer_.clear();
}

void FileLoader::write_csv(const Record &r, uint32_t index, Emitter &out) {
    std::string error;
    bj::object *obj = parser_.parse_object(r.payload(), error);
    if (!obj) {
        out.fail(index, "cannot write as CSV: " + error);
        return;
    }
    if (columns_.empty())
        for (const auto &kv : *obj) columns_.emplace_back(kv.key());
    if (!header_written_ && header_) {
        for (size_t i = 0; i < columns_.size(); ++i) {
            if (i) buffer_ += delimiter_;
            append_csv_field(buffer_, columns_[i], delimiter_);
        }
        buffer_ += '\n';
    }
    header_written_ = true;
    size_t matched = 0;
    for (size_t i = 0; i < columns_.size(); ++i) {
        if (i) buffer_ += delimiter_;
        const bj::value *v = obj->if_contains(columns_[i]);
        if (!v) continue;
        ++matched;
        if (v->is_null()) continue;
        if (v->is_string()) {
            append_csv_field(buffer_, v->get_string(), delimiter_);
        } else {
            field_ = bj::serialize(*v);
            append_csv_field(buffer_, field_, delimiter_);
        }
    }
    buffer_ += '\n';
    if (obj->size() > matched) ++fields_not_in_columns_;
}

void FileLoader::process(Input in, Emitter &out) {
    // What to go back to if the batch cannot be written: the host then
    // calls again with the same records.
    const size_t buffered = buffer_.size();
    const uint64_t records = records_;
    const bool header_written = header_written_;
    try {
        write_batch(in, out);
    } catch (const EnvironmentError &) {
        buffer_.resize(buffered);
        records_ = records;
        header_written_ = header_written;
        throw;
    }
}

std::string FileLoader::recover() {
    if (!append_) return {};
    markers_ = std::make_unique<MarkerLog>(path_ + ".sluice-markers", fsync_);
    std::optional<MarkerLog::Entry> last = markers_->recover(file_length_);
    if (!last) return {};
    if (last->length < file_length_) {
        if (::ftruncate(fd_, off_t(last->length)) != 0)
            throw Error("cannot cut " + path_ + " back to its last marker: " + errno_text());
        if (fsync_ && ::fdatasync(fd_) != 0) throw EnvironmentError("fdatasync of " + path_ + " failed: " + errno_text());
        host_.warn("cut " + std::to_string(file_length_ - last->length) + " bytes written after the last delivered "
                   "batch off " + path_ + " (a resumed run writes them again, once)");
        file_length_ = last->length;
        header_written_ = file_length_ > 0;
    }
    return last->marker;
}

void FileLoader::process(Input in, Emitter &out, std::string_view marker) {
    const uint64_t before = file_length_;
    process(in, out);
    if (!markers_) return;
    try {
        markers_->append(file_length_, marker, false);
    } catch (const EnvironmentError &) {
        // The batch must not stay without its marker: take it back.
        if (::ftruncate(fd_, off_t(before)) != 0) throw FatalError("cannot cut " + path_ + " back: " + errno_text());
        file_length_ = before;
        throw;
    }
}

void FileLoader::sync_markers() {
    if (markers_) markers_->sync();
}

void FileLoader::write_batch(Input in, Emitter &out) {
    for (uint32_t i = 0; i < in.size(); ++i) {
        Record r = in[i];
        if (!r.is_json()) {
            out.fail(i, "the file loader writes JSON records; this one is " + std::string(r.content_type()));
            continue;
        }
        if (csv_) {
            write_csv(r, i, out);
        } else {
            if (attributes_field_.empty()) buffer_.append(r.payload());
            else append_with_attributes(r.raw());
            buffer_ += '\n';
        }
        ++records_;
    }
    if (!append_) {
        write_out(false);
        return;
    }
    // Appending: the batch is on disk before it counts as delivered.
    const uint64_t batch_start = file_length_, bytes = bytes_;
    write_out(true);
    if (fsync_ && ::fdatasync(fd_) != 0) {
        // Whether the batch reached the disk is unknown: take it back and
        // let the host write it again.
        std::string message = "fdatasync of " + path_ + " failed: " + errno_text();
        file_length_ = batch_start;
        bytes_ = bytes;
        if (::ftruncate(fd_, off_t(file_length_)) != 0) throw FatalError(message);
        throw EnvironmentError(message);
    }
}

void FileLoader::flush(Emitter &) {
    if (csv_ && !header_written_ && header_ && !columns_.empty()) {
        for (size_t i = 0; i < columns_.size(); ++i) {
            if (i) buffer_ += delimiter_;
            append_csv_field(buffer_, columns_[i], delimiter_);
        }
        buffer_ += '\n';
        header_written_ = true;
    }
    write_out(true);
    if (fsync_ && ::fsync(fd_) != 0) throw Error("fsync of " + (temp_path_.empty() ? path_ : temp_path_) + " failed: " + errno_text());
    if (!append_) {
        if (::rename(temp_path_.c_str(), path_.c_str()) != 0)
            throw Error("cannot rename " + temp_path_ + " to " + path_ + ": " + errno_text());
        if (fsync_) sync_directory_of(path_); // the rename itself
    }
    committed_ = true;
    host_.counter("records_written", int64_t(records_));
    host_.counter("bytes_written", int64_t(bytes_));
    if (fields_not_in_columns_) host_.counter("records_with_fields_not_in_columns", int64_t(fields_not_in_columns_));
    host_.info("wrote " + std::to_string(records_) + " records to " + path_);
}

void FileLoader::stop() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
    // Not committed: the run failed. Leave no file that looks complete.
    if (!committed_ && !append_ && !temp_path_.empty()) ::unlink(temp_path_.c_str());
    temp_path_.clear();
}

} // namespace sluice::plugins
