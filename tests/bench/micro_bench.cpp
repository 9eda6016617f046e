// Google Benchmark micro-benchmarks of the hot path's pieces: the batch
// queue, the host's emitter, map's text edit, rules' checks, and a batch's
// round trip to an isolated worker process. Not tests: run them to see what
// a change costs, e.g.
//
//   build/release/bin/micro_bench --benchmark_filter=Map
//
// Records are the benchmark's ~200-byte orders; a batch is 1024 of them.
// Items per second are records per second.
#include "batch.hpp"
#include "emitter.hpp"
#include "in_process_instance.hpp"
#include "isolated_instance.hpp"
#include "metrics.hpp"
#include "pipeline_control.hpp"
#include "plugin_loader.hpp"
#include "queue.hpp"
#include "quiet_host.hpp"

#include "../../plugins/common/json_fields.hpp"

#include <benchmark/benchmark.h>

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

namespace sluice {
namespace {

constexpr uint32_t kBatch = 1024;

std::string order(uint32_t i) {
    char buf[320];
    std::snprintf(buf, sizeof buf,
                  R"({"id":%u,"timestamp":"2026-01-01T00:00:00Z","user":"sophie%u","email":"sophie%u@example.com",)"
                  R"("amount":%u.%02u,"country":"%s","text":"damaged item service quality item refund arrived thanks"})",
                  i, i % 10000, i % 10000, i % 1000, i % 100, i % 50 == 0 ? "XX" : "DE");
    return buf;
}

Batch make_batch(uint32_t n = kBatch) {
    Batch b;
    for (uint32_t i = 0; i < n; ++i) {
        std::string text = order(i);
        sluice_record r{};
        r.id = i + 1;
        r.payload = b.storage->arena.copy(text);
        r.payload_len = text.size();
        b.records.push_back(r);
    }
    return b;
}

// One instance of a bundled plugin, in process or in a worker process.
struct Instance {
    LoadedStage stage;
    PipelineControl control;
    StageMetrics metrics{1};
    std::unique_ptr<StageInstance> instance;

    Instance(sluice_kind kind, const std::string &plugin, const std::string &config, bool isolated) {
        PluginRegistry registry(plugin_search_dirs({}));
        stage = registry.find(kind, plugin, std::nullopt);
        InstanceSetup s;
        s.desc = stage.desc;
        s.host = test::quiet_host();
        s.library_path = stage.library->path();
        s.stage_id = plugin;
        s.config_json = config;
        s.base_dir = ".";
        s.kind = kind;
        std::string problem;
        if (isolated) instance = IsolatedInstance::create(s, WorkerLimits{}, control, metrics, problem);
        else instance = InProcessInstance::create(s, std::make_shared<std::atomic<int>>(0), problem);
        if (!instance || !instance->start().empty()) {
            std::string what = "cannot start ";
            what.append(plugin).append(": ").append(problem);
            throw std::runtime_error(what);
        }
    }
    ~Instance() {
        if (instance) instance->stop();
    }
};

// Calls process on one batch per iteration, as a stage's worker does.
void run_process(benchmark::State &state, Instance &inst, size_t outputs) {
    Batch in = make_batch();
    std::vector<Batch> out;
    FailureBatch failures;
    BatchEmitter emitter(out, failures);
    for (auto _ : state) {
        out.clear();
        out.resize(outputs);
        for (Batch &b : out) b.records.reserve(kBatch);
        failures = FailureBatch{};
        emitter.set_input(&in, 0, kBatch);
        CallResult r = inst.instance->process(in.records.data(), kBatch, emitter, nullptr);
        if (r.status != SLUICE_OK) state.SkipWithError("process failed");
        benchmark::DoNotOptimize(out.data());
    }
    state.SetItemsProcessed(int64_t(state.iterations()) * kBatch);
}

void Queue_PushPop(benchmark::State &state) {
    BatchQueue queue(64, false, 1);
    Batch proto = make_batch(16);
    for (auto _ : state) {
        Batch b;
        b.records = proto.records;
        queue.push(std::move(b));
        auto popped = queue.pop();
        queue.done();
        benchmark::DoNotOptimize(popped);
    }
    state.SetItemsProcessed(int64_t(state.iterations()));
}
BENCHMARK(Queue_PushPop);

void Emitter_Forward(benchmark::State &state) {
    Batch in = make_batch();
    std::vector<Batch> out(1);
    FailureBatch failures;
    BatchEmitter emitter(out, failures);
    for (auto _ : state) {
        out[0].records.clear();
        emitter.set_input(&in, 0, kBatch);
        for (uint32_t i = 0; i < kBatch; ++i) emitter.raw()->forward(emitter.raw(), 0, i);
        benchmark::DoNotOptimize(out[0].records.data());
    }
    state.SetItemsProcessed(int64_t(state.iterations()) * kBatch);
}
BENCHMARK(Emitter_Forward);

void Emitter_EmitNewPayload(benchmark::State &state) {
    Batch in = make_batch();
    FailureBatch failures;
    for (auto _ : state) {
        std::vector<Batch> out(1); // a fresh arena per batch, as a stage's worker has
        out[0].records.reserve(kBatch);
        BatchEmitter emitter(out, failures);
        emitter.set_input(&in, 0, kBatch);
        for (uint32_t i = 0; i < kBatch; ++i) emitter.raw()->emit(emitter.raw(), 0, i, &in.records[i]);
        benchmark::DoNotOptimize(out[0].records.data());
    }
    state.SetItemsProcessed(int64_t(state.iterations()) * kBatch);
}
BENCHMARK(Emitter_EmitNewPayload);

// The field reader map, rules and route share: one record's top-level
// fields found (what every one of those stages pays per record).
void JsonFields_Read(benchmark::State &state) {
    Batch in = make_batch();
    plugins::JsonFields fields;
    std::string error;
    uint32_t i = 0;
    for (auto _ : state) {
        const sluice_record &r = in.records[i++ % kBatch];
        if (!fields.read({r.payload, r.payload_len}, error)) state.SkipWithError("not read");
        benchmark::DoNotOptimize(fields.fields().data());
    }
    state.SetItemsProcessed(int64_t(state.iterations()));
}
BENCHMARK(JsonFields_Read);

const char *kMapConfig = R"({"rename":{"user":"user_id"},"drop":["text"],"set":{"source":"bench"}})";
const char *kRulesConfig = R"({"rules":[{"field":"email","required":true,"regex":"^[^@]+@[^@]+\\.[a-z]+$"},
    {"field":"amount","type":"number","min":0},{"field":"country","enum":["US","DE","FR","GB","NL","SE","JP","BR"]}]})";

void Map_EditText(benchmark::State &state) {
    Instance inst(SLUICE_KIND_TRANSFORMER, "map", kMapConfig, false);
    run_process(state, inst, 1);
}
BENCHMARK(Map_EditText);

void Rules_ThreeRules(benchmark::State &state) {
    Instance inst(SLUICE_KIND_VALIDATOR, "rules", kRulesConfig, false);
    run_process(state, inst, 2);
}
BENCHMARK(Rules_ThreeRules);

// A batch to a worker process and back (shared memory, the call log
// replayed): map forwarding every record unchanged, so the transport is
// what is measured; in process beside it.
void Isolation_BatchRoundTrip(benchmark::State &state) {
    Instance inst(SLUICE_KIND_TRANSFORMER, "map", R"({"drop":["absent"]})", state.range(0) != 0);
    run_process(state, inst, 1);
}
BENCHMARK(Isolation_BatchRoundTrip)->Arg(0)->Arg(1)->ArgName("isolated");

} // namespace
} // namespace sluice

BENCHMARK_MAIN();
