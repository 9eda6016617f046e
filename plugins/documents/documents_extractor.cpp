#include "documents_extractor.hpp"

#include <sluice/utc_time.hpp>

#include "../common/resource_uri.hpp"

#include "../common/sorted_files.hpp"
#include "text_extraction.hpp"

#include <sluice/json.hpp>

#include <magic.h>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <filesystem>
#include <fnmatch.h>
#include <fstream>
#include <sstream>
#include <utility>

namespace sluice::plugins::documents {

namespace fs = std::filesystem;

namespace {

bool matches(const std::vector<std::string> &patterns, const std::string &name) {
    for (const auto &p : patterns)
        if (::fnmatch(p.c_str(), name.c_str(), 0) == 0) return true;
    return false;
}

std::string lower_extension(const fs::path &p) {
    std::string e = p.extension().string();
    for (char &c : e) c = char(std::tolower(static_cast<unsigned char>(c)));
    return e;
}

std::string iso_time(fs::file_time_type t) {
    return utc_time(std::chrono::time_point_cast<std::chrono::seconds>(std::chrono::file_clock::to_sys(t)));
}

// Byte offset of code point `n` in UTF-8 `s` (or its size).
size_t offset_of(const std::string &s, size_t n) {
    size_t seen = 0;
    for (size_t i = 0; i < s.size(); ++i) {
        if ((static_cast<unsigned char>(s[i]) & 0xC0) == 0x80) continue; // inside a code point
        if (seen++ == n) return i;
    }
    return s.size();
}

size_t code_points(const std::string &s) {
    size_t n = 0;
    for (unsigned char c : s) n += (c & 0xC0) != 0x80;
    return n;
}

} // namespace

std::vector<std::pair<size_t, std::string>> chunk_text(const std::string &text, size_t size, size_t overlap) {
    std::vector<std::pair<size_t, std::string>> chunks;
    if (overlap >= size) overlap = size / 2;
    const size_t total = code_points(text);
    size_t start = 0; // in code points
    while (start < total) {
        size_t end = std::min(total, start + size);
        size_t b0 = offset_of(text, start), b1 = offset_of(text, end);
        if (end < total) {
            // Prefer to end at white space in the last fifth of the chunk.
            size_t floor = offset_of(text, start + size * 4 / 5);
            size_t ws = text.find_last_of(" \n\t", b1);
            if (ws != std::string::npos && ws >= floor && ws > b0) {
                end = start + code_points(text.substr(b0, ws + 1 - b0));
                b1 = ws + 1;
            }
        }
        chunks.emplace_back(start, text.substr(b0, b1 - b0));
        if (end >= total) break;
        start = end > overlap ? std::max(start + 1, end - overlap) : end;
    }
    return chunks;
}

DocumentsExtractor::DocumentsExtractor(const Context &ctx)
    : host_(ctx.host), worker_index_(ctx.worker_index), worker_count_(std::max<uint32_t>(1, ctx.worker_count)) {
    json::Config c(ctx.config_json);
    root_ = ctx.resolve_path(c.required_string("path"));
    include_ = c.strings("include");
    exclude_ = c.strings("exclude");
    recursive_ = c.boolean("recursive");
    chunk_chars_ = size_t(c.integer("chunk_chars"));
    chunk_overlap_ = size_t(c.integer("chunk_overlap"));
    if (chunk_chars_ > 0 && chunk_overlap_ >= chunk_chars_) c.fail("chunk_overlap", "must be less than chunk_chars");
    max_file_bytes_ = size_t(c.integer("max_file_bytes"));
    text_field_ = c.string("text_field");
}

DocumentsExtractor::~DocumentsExtractor() {
    if (magic_) magic_close(static_cast<magic_t>(magic_));
}

void DocumentsExtractor::start() {
    std::error_code ec;
    if (!fs::is_directory(root_, ec)) throw Error("path '" + root_ + "' is not a directory");
    auto consider = [&](const fs::directory_entry &e) {
        if (!e.is_regular_file()) return;
        std::string name = e.path().filename().string();
        if (matches(include_, name) && !matches(exclude_, name)) files_.push_back(e.path().string());
    };
    if (recursive_) {
        for (const auto &e : fs::recursive_directory_iterator(root_, fs::directory_options::skip_permission_denied, ec))
            consider(e);
    } else {
        for (const auto &e : fs::directory_iterator(root_, ec)) consider(e);
    }
    if (ec) throw Error("path '" + root_ + "': " + ec.message());
    std::sort(files_.begin(), files_.end());
    files_ = share_of(std::move(files_), worker_index_, worker_count_);
    if (resume_) {
        // Documents are read in sorted order: those before the saved one are
        // done.
        const SortedPlace place = locate(files_, resume_->file);
        next_ = place.index;
        if (!place.found)
            host_.warn("resuming: " + resume_->file + " is no longer there; going on with the documents after it");
        else if (resume_->done)
            ++next_;
        else
            skip_ = resume_->emitted;
        host_.info("resuming at document " + std::to_string(next_ + 1) + " of " + std::to_string(files_.size()) +
                   (skip_ ? " after its first " + std::to_string(skip_) + " records" : std::string()));
        resume_.reset();
    }
    magic_t m = magic_open(MAGIC_MIME_TYPE);
    if (!m || magic_load(m, nullptr) != 0) {
        std::string why = m ? magic_error(m) : "out of memory";
        if (m) magic_close(m);
        throw Error("cannot load libmagic's database: " + why);
    }
    magic_ = m;
    host_.debug("found " + std::to_string(files_.size()) + " documents under " + root_);
}

void DocumentsExtractor::read_next(Emitter &out) {
    const std::string path = files_[next_++];
    const fs::path p(path);
    current_key_ = absolute_key(path);
    emitted_ = 0;
    const uint64_t skip = std::exchange(skip_, 0);
    auto fail = [&](const std::string &why) {
        out.emit_failed({}, why, {attr(SLUICE_ATTR_SOURCE, path)});
        host_.counter("unreadable_documents", 1);
    };
    std::error_code ec;
    const uintmax_t size = fs::file_size(p, ec);
    if (ec) return fail("cannot read: " + ec.message());
    if (size > max_file_bytes_) return fail("larger than max_file_bytes (" + std::to_string(max_file_bytes_) + ")");
    std::ifstream in(path, std::ios::binary);
    if (!in) return fail("cannot open the file");
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const char *mime = magic_buffer(static_cast<magic_t>(magic_), bytes.data(), bytes.size());
    std::string type = mime ? mime : "application/octet-stream";
    const std::string ext = lower_extension(p);

    ExtractedText doc;
    try {
        if (type == "application/pdf") {
            doc = pdf_to_text(bytes);
        } else if (type == "text/html" || (type.rfind("text/", 0) == 0 && (ext == ".html" || ext == ".htm"))) {
            type = "text/html";
            doc = html_to_text(bytes);
        } else if (type.rfind("text/", 0) == 0 || type == "application/json" || type == "inode/x-empty") {
            if (ext == ".md") type = "text/markdown";
            else if (ext == ".json") type = "application/json";
            doc.text = valid_utf8(bytes);
        } else {
            return fail("unsupported content type " + type);
        }
    } catch (const std::exception &e) {
        return fail(std::string(type) + ": " + e.what());
    }

    // Metadata shared by every chunk.
    std::string meta;
    json::append_string(meta, "path");
    meta += ':';
    json::append_string(meta, path);
    meta += ",\"file_name\":";
    json::append_string(meta, p.filename().string());
    meta += ",\"size\":" + std::to_string(size) + ",\"modified\":";
    json::append_string(meta, iso_time(fs::last_write_time(p, ec)));
    meta += ",\"content_type\":";
    json::append_string(meta, type);
    if (!doc.title.empty()) {
        meta += ",\"title\":";
        json::append_string(meta, valid_utf8(doc.title));
    }
    if (doc.pages > 0) meta += ",\"pages\":" + std::to_string(doc.pages);

    auto record = [&](const std::string &text, const std::string &extra) {
        std::string r = "{" + meta + extra + ",";
        json::append_string(r, text_field_);
        r += ':';
        json::append_string(r, text);
        return r + "}";
    };
    if (chunk_chars_ == 0) {
        pending_.push_back(record(doc.text, ",\"characters\":" + std::to_string(code_points(doc.text))));
    } else {
        auto chunks = chunk_text(doc.text, chunk_chars_, chunk_overlap_);
        for (size_t i = 0; i < chunks.size(); ++i)
            pending_.push_back(record(chunks[i].second, ",\"chunk\":" + std::to_string(i) + ",\"chunks\":" +
                                                            std::to_string(chunks.size()) + ",\"chunk_start\":" +
                                                            std::to_string(chunks[i].first)));
    }
    // Resuming inside this document: its first records were delivered.
    const size_t dropped = size_t(std::min<uint64_t>(skip, pending_.size()));
    pending_.erase(pending_.begin(), pending_.begin() + std::ptrdiff_t(dropped));
    emitted_ = dropped;
    pending_source_ = path;
    host_.counter("documents_read", 1);
}

bool DocumentsExtractor::pull(Emitter &out, uint32_t max_records) {
    uint32_t n = 0;
    while (n < max_records) {
        if (pending_.empty()) {
            if (next_ >= files_.size()) return true;
            read_next(out);
            ++n; // a failed document counts too
            continue;
        }
        out.emit_new(pending_.front(), {attr(SLUICE_ATTR_SOURCE, pending_source_)});
        pending_.pop_front();
        ++emitted_;
        ++n;
    }
    return pending_.empty() && next_ >= files_.size();
}

std::string DocumentsExtractor::checkpoint() const {
    if (current_key_.empty()) return {}; // nothing read yet: "cannot say" keeps the restored position
    json::PositionWriter out;
    out.string("file", current_key_);
    if (pending_.empty()) return out.flag("done", true).text();
    return out.count("emitted", emitted_).text();
}

void DocumentsExtractor::restore(std::string_view position) {
    json::SavedPosition saved(position);
    Resume r;
    r.file = saved.required_string("file");
    r.done = saved.flag("done");
    r.emitted = saved.count("emitted");
    resume_ = std::move(r);
}

std::string DocumentsExtractor::resources() const {
    return Resources().reads("path", file_uri(root_) + (root_.empty() || root_.back() != '/' ? "/" : "")).json();
}

} // namespace sluice::plugins::documents

SLUICE_PLUGIN(sluice::plugins::documents::DocumentsExtractor)
