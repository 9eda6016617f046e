// Length-prefixed fields: how small structures (a worker's init arguments,
// a metrics declaration) are written as bytes to cross to a worker process
// and read back, with every read checked against the end.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace sluice::length_prefixed {

inline void put(std::string &out, uint32_t v) { out.append(reinterpret_cast<const char *>(&v), 4); }

inline void put(std::string &out, std::string_view s) {
    put(out, uint32_t(s.size()));
    out.append(s);
}

// Reads what put wrote; `ok` turns false at the first read past the end.
struct Reader {
    std::string_view in;
    bool ok = true;
    uint32_t u32() {
        uint32_t v = 0;
        if (in.size() < 4) return ok = false, 0;
        std::memcpy(&v, in.data(), 4);
        in.remove_prefix(4);
        return v;
    }
    std::string str() {
        const uint32_t n = u32();
        if (!ok || in.size() < n) return ok = false, std::string();
        std::string s(in.substr(0, n));
        in.remove_prefix(n);
        return s;
    }
};

} // namespace sluice::length_prefixed
