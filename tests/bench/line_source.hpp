// Reads a file of lines in large blocks for the floor programs: every line
// handed out is followed by at least `padding` readable bytes (simdjson
// reads past the end of a document), and memory stays one block whatever
// the file's size.
#pragma once

#include <cstdio>
#include <cstring>
#include <string_view>
#include <vector>

class LineSource {
public:
    LineSource(std::FILE *in, size_t padding) : in_(in), padding_(padding), buffer_(kBlock + padding) {}

    // The next line without its '\n'; false at the end of the file.
    bool next(std::string_view &line) {
        for (;;) {
            const char *nl = static_cast<const char *>(std::memchr(buffer_.data() + begin_, '\n', end_ - begin_));
            if (nl) {
                line = std::string_view(buffer_.data() + begin_, size_t(nl - buffer_.data()) - begin_);
                begin_ += line.size() + 1;
                return true;
            }
            if (eof_) {
                if (begin_ == end_) return false;
                line = std::string_view(buffer_.data() + begin_, end_ - begin_);
                begin_ = end_;
                return true;
            }
            // Move the partial line to the front, grow if one line fills the block, read more.
            std::memmove(buffer_.data(), buffer_.data() + begin_, end_ - begin_);
            end_ -= begin_;
            begin_ = 0;
            if (end_ + padding_ >= buffer_.size() / 2) buffer_.resize(buffer_.size() * 2);
            size_t got = std::fread(buffer_.data() + end_, 1, buffer_.size() - padding_ - end_, in_);
            if (got == 0) eof_ = true;
            end_ += got;
            std::memset(buffer_.data() + end_, 0, padding_);
        }
    }

private:
    static constexpr size_t kBlock = 1 << 20;
    std::FILE *in_;
    size_t padding_;
    std::vector<char> buffer_;
    size_t begin_ = 0, end_ = 0;
    bool eof_ = false;
};

// Collects output and writes it in large blocks.
class BlockWriter {
public:
    explicit BlockWriter(std::FILE *out) : out_(out) { text_.reserve(kBlock + 4096); }
    ~BlockWriter() { flush(); }
    std::vector<char> &text() { return text_; }
    void append(std::string_view s) { text_.insert(text_.end(), s.begin(), s.end()); }
    void append(char c) { text_.push_back(c); }
    void end_line() {
        text_.push_back('\n');
        if (text_.size() >= kBlock) flush();
    }
    void flush() {
        if (!text_.empty()) std::fwrite(text_.data(), 1, text_.size(), out_);
        text_.clear();
    }

private:
    static constexpr size_t kBlock = 1 << 20;
    std::FILE *out_;
    std::vector<char> text_;
};
