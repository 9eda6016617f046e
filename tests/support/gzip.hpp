// gzip for tests that send compressed bodies (Poco's deflating stream).
#pragma once

#include <Poco/DeflatingStream.h>

#include <sstream>
#include <string>

namespace sluice::test {

inline std::string gzip(const std::string &text) {
    std::ostringstream out;
    Poco::DeflatingOutputStream z(out, Poco::DeflatingStreamBuf::STREAM_GZIP);
    z << text;
    z.close();
    return out.str();
}

} // namespace sluice::test
