// A floor for the benchmark: the bench job (rename user -> user_id, drop
// text, add "source":"bench") done by one thread with a Boost.JSON DOM:
// parse each line into a reused arena, edit the object, serialise.
//
//   floor_dom INPUT.ndjson > OUTPUT.ndjson
#include "line_source.hpp"

#include <boost/json.hpp>

#include <cstdio>

namespace bj = boost::json;

int main(int argc, char **argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: floor_dom INPUT.ndjson\n");
        return 2;
    }
    std::FILE *in = std::fopen(argv[1], "rb");
    if (!in) {
        std::perror(argv[1]);
        return 1;
    }
    LineSource lines(in, 0);
    BlockWriter out(stdout);
    alignas(16) static unsigned char arena[64 * 1024];
    bj::parser parser;
    bj::serializer serializer;
    char chunk[4096];
    size_t bad = 0;
    for (std::string_view line; lines.next(line);) {
        if (line.empty()) continue;
        bj::monotonic_resource resource(arena, sizeof arena);
        parser.reset(bj::storage_ptr(&resource));
        boost::system::error_code ec;
        parser.write(line.data(), line.size(), ec);
        if (ec) {
            ++bad;
            continue;
        }
        bj::value v = parser.release();
        bj::object *obj = v.if_object();
        if (!obj) {
            ++bad;
            continue;
        }
        if (bj::value *user = obj->if_contains("user")) {
            bj::value moved = std::move(*user);
            obj->erase("user");
            (*obj)["user_id"] = std::move(moved);
        }
        obj->erase("text");
        (*obj)["source"] = "bench";
        serializer.reset(&v);
        while (!serializer.done()) out.append(serializer.read(chunk, sizeof chunk));
        out.end_line();
    }
    out.flush();
    if (bad) std::fprintf(stderr, "floor_dom: %zu lines were not JSON objects\n", bad);
    return 0;
}
