#include "file_sha256.hpp"

#include <openssl/evp.h>

#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <vector>

namespace sluice {

std::string file_sha256(const std::string &path) {
    std::unique_ptr<FILE, int (*)(FILE *)> in(std::fopen(path.c_str(), "rb"), &std::fclose);
    if (!in) throw std::runtime_error(path + ": cannot be read: " + std::strerror(errno));
    std::unique_ptr<EVP_MD_CTX, void (*)(EVP_MD_CTX *)> ctx(EVP_MD_CTX_new(), &EVP_MD_CTX_free);
    if (!ctx || EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr) != 1)
        throw std::runtime_error(path + ": cannot hash: OpenSSL has no SHA-256");
    std::vector<unsigned char> block(1 << 20);
    size_t n;
    while ((n = std::fread(block.data(), 1, block.size(), in.get())) > 0) EVP_DigestUpdate(ctx.get(), block.data(), n);
    if (std::ferror(in.get())) throw std::runtime_error(path + ": cannot be read: " + std::strerror(errno));
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int length = 0;
    EVP_DigestFinal_ex(ctx.get(), digest, &length);
    static const char hex[] = "0123456789abcdef";
    std::string out;
    for (unsigned int i = 0; i < length; ++i) {
        out += hex[digest[i] >> 4];
        out += hex[digest[i] & 15];
    }
    return out;
}

bool is_sha256_hex(const std::string &text) {
    if (text.size() != 64) return false;
    for (char c : text)
        if (!std::isxdigit(static_cast<unsigned char>(c))) return false;
    return true;
}

} // namespace sluice
