// libFuzzer target: the file extractor's readers (NDJSON, CSV with and
// without strict quotes, JSON arrays, dead letters) on any bytes, with a
// small buffer and record limit so refills, over-long records and
// resynchronisation are exercised. Input: one byte choosing the format,
// then the file.
#include "stage_driver.hpp"

#include <cstdint>
#include <cstdio>
#include <fstream>
#include <string>
#include <unistd.h>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size == 0) return 0;
    static const std::string path = "/tmp/sluice-fuzz-reader-" + std::to_string(::getpid());
    {
        std::ofstream out(path, std::ios::binary | std::ios::trunc);
        out.write(reinterpret_cast<const char *>(data + 1), std::streamsize(size - 1));
    }
    static const char *formats[] = {
        R"("format":"ndjson")", R"("format":"csv")", R"("format":"csv","strict_quotes":true)",
        R"("format":"json")", R"("format":"ndjson","unwrap_dead_letters":true)",
        R"("format":"csv","header":false,"columns":["a","b","c"],"infer_types":true)"};
    std::string config = std::string(R"({"path":")") + path + R"(","max_record_bytes":1024,"read_buffer_bytes":4096,)" +
                         formats[data[0] % 6] + "}";
    sluice::fuzz::Created c = sluice::fuzz::create_stage(SLUICE_KIND_EXTRACTOR, config, "/");
    if (!c.instance) return 0;
    if (c.desc->start(c.instance) == SLUICE_OK) {
        int32_t end = 0;
        for (int pulls = 0; !end && pulls < 100000; ++pulls) {
            std::vector<sluice::Batch> outputs(1);
            sluice::FailureBatch failures;
            sluice::BatchEmitter emitter(outputs, failures);
            if (c.desc->pull(c.instance, emitter.raw(), 7, &end) != SLUICE_OK) break;
        }
        c.desc->stop(c.instance);
    }
    c.desc->destroy(c.instance);
    return 0;
}
