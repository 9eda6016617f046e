// libFuzzer target: what an isolated worker writes into shared memory. The
// host reads a call log (call_log.hpp) and record batches from a process
// running a plugin it does not trust: no bytes may make it read out of
// bounds or crash. Input: the bytes, read both as a call log replayed over a
// batch of three records and as an encoded batch.
#include "call_log.hpp"
#include "emitter.hpp"

#include <string>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    using namespace sluice;
    const std::string_view bytes(reinterpret_cast<const char *>(data), size);
    Batch in;
    for (uint64_t i = 1; i <= 3; ++i) {
        sluice_record r{};
        r.id = i;
        r.payload = in.storage->arena.copy("{\"n\":1}");
        r.payload_len = 7;
        sluice_attr a{"k", 1, "v", 1};
        r.attrs = copy_attrs(in.storage->arena, &a, 1);
        r.attr_count = 1;
        in.records.push_back(r);
    }
    std::vector<Batch> outputs(2);
    FailureBatch failures;
    BatchEmitter emitter(outputs, failures);
    emitter.set_input(&in, 0, 3);
    std::string problem;
    replay_calls(bytes, emitter, in.records.data(), 3, problem);
    (void)emitter.unaccounted();

    RecordsView view;
    if (view.decode(bytes, problem)) {
        // Every record it accepts can be read whole.
        size_t total = 0;
        for (uint32_t i = 0; i < view.size(); ++i) {
            const sluice_record &r = view.data()[i];
            for (size_t k = 0; k < r.payload_len; ++k) total += uint8_t(r.payload[k]);
            for (uint32_t a = 0; a < r.attr_count; ++a) total += r.attrs[a].key_len + r.attrs[a].value_len;
        }
        (void)total;
    }
    return 0;
}
