// The parts of the stage runtime, in process (no `sluice` subprocess): the
// call log that carries results across a boundary, the emitter's ledger,
// poison-record bisection, the restart budget, the two kinds of stage
// instance behind one interface (the isolated one starts `sluice-worker`),
// and the error path.
#include "call_log.hpp"
#include "emitter.hpp"
#include "failure_router.hpp"
#include "in_process_instance.hpp"
#include "isolated_instance.hpp"
#include "plugin_loader.hpp"
#include "poison_bisection.hpp"
#include "quiet_host.hpp"
#include "restart_budget.hpp"
#include "worker_protocol.hpp"

#include <sluice/dead_letter.hpp>

#include <gtest/gtest.h>

#include <cmath>
#include <set>
#include <thread>

#include <cerrno>
#include <unistd.h>

using namespace sluice;

namespace {

// A batch of `n` JSON records {"id":i} with ids 1..n and one attribute.
Batch make_batch(uint32_t n) {
    Batch b;
    for (uint32_t i = 0; i < n; ++i) {
        std::string payload = "{\"id\":" + std::to_string(i + 1) + "}";
        sluice_record r{};
        r.id = i + 1;
        r.payload = b.storage->arena.copy(payload);
        r.payload_len = payload.size();
        sluice_attr a{"source", 6, "t.ndjson", 8};
        r.attrs = copy_attrs(b.storage->arena, &a, 1);
        r.attr_count = 1;
        b.records.push_back(r);
    }
    return b;
}

std::string payload(const sluice_record &r) { return std::string(r.payload, r.payload_len); }

} // namespace

TEST(CallLog, RecordsSurviveEncodingWithTheirBytesAttributesAndContentType) {
    Batch b = make_batch(3);
    std::string with_nul("a\0b", 3);
    b.records[1].payload = b.storage->arena.copy(with_nul);
    b.records[1].payload_len = 3;
    b.records[2].content_type = intern_content_type(SLUICE_CONTENT_TEXT);
    std::string bytes;
    encode_records(bytes, b.records.data(), 3);
    RecordsView view;
    std::string problem;
    ASSERT_TRUE(view.decode(bytes, problem)) << problem;
    ASSERT_EQ(view.size(), 3u);
    EXPECT_EQ(view.data()[0].id, 1u);
    EXPECT_EQ(payload(view.data()[1]), with_nul);
    EXPECT_EQ(view.data()[0].content_type, nullptr);
    EXPECT_STREQ(view.data()[2].content_type, SLUICE_CONTENT_TEXT);
    ASSERT_EQ(view.data()[2].attr_count, 1u);
    EXPECT_EQ(std::string(view.data()[2].attrs[0].value, view.data()[2].attrs[0].value_len), "t.ndjson");
    // Cut anywhere, the bytes are refused, never read past their end.
    for (size_t cut = 0; cut < bytes.size(); ++cut)
        EXPECT_FALSE(view.decode(std::string_view(bytes.data(), cut), problem)) << cut;
}

TEST(CallLog, ARecorderAnswersAsTheHostAndItsReplayMatchesADirectCall) {
    Batch in = make_batch(4);
    // The same calls straight into a BatchEmitter ...
    std::vector<Batch> direct_out(2);
    FailureBatch direct_failures;
    BatchEmitter direct(direct_out, direct_failures);
    direct.set_input(&in, 0, 4);
    // ... and into a recorder, replayed into another.
    std::string log;
    CallRecorder recorder(log, 2, in.records.data(), 4);
    for (const sluice_emitter *e : {direct.raw(), recorder.raw()}) {
        const sluice_drop_ext *drop = e == direct.raw() ? BatchEmitter::drop_extension() : CallRecorder::drop_extension();
        EXPECT_EQ(e->forward(e, 0, 0), SLUICE_OK);
        sluice_record r = in.records[1];
        r.payload = "{\"x\":1}";
        r.payload_len = 7;
        EXPECT_EQ(e->emit(e, 1, 1, &r), SLUICE_OK); // keeps the input's attributes
        EXPECT_EQ(e->reject(e, 2, "too big", 7), SLUICE_OK);
        EXPECT_EQ(drop->drop(e, 3), SLUICE_OK);
        EXPECT_EQ(e->forward(e, 5, 0), SLUICE_ERROR) << "no output 5";
        EXPECT_EQ(e->forward(e, 0, 4), SLUICE_ERROR) << "no input 4";
        EXPECT_EQ(e->fail(e, 9, "x", 1), SLUICE_ERROR);
    }
    std::vector<Batch> replay_out(2);
    FailureBatch replay_failures;
    BatchEmitter replayed(replay_out, replay_failures);
    replayed.set_input(&in, 0, 4);
    std::string problem;
    ASSERT_TRUE(replay_calls(log, replayed, in.records.data(), 4, problem)) << problem;
    for (size_t o = 0; o < 2; ++o) {
        ASSERT_EQ(replay_out[o].records.size(), direct_out[o].records.size());
        for (size_t i = 0; i < replay_out[o].records.size(); ++i) {
            EXPECT_EQ(payload(replay_out[o].records[i]), payload(direct_out[o].records[i]));
            EXPECT_EQ(replay_out[o].records[i].id, direct_out[o].records[i].id);
            EXPECT_EQ(replay_out[o].records[i].attr_count, 1u);
        }
    }
    ASSERT_EQ(replay_failures.items.size(), 1u);
    EXPECT_EQ(replay_failures.items[0].kind, FailureKind::rejected);
    EXPECT_EQ(replay_failures.items[0].message, "too big");
    EXPECT_EQ(replayed.unaccounted(), direct.unaccounted());
    EXPECT_TRUE(replayed.unaccounted().empty());
    EXPECT_EQ(replayed.dropped(), 1u);
    EXPECT_EQ(replayed.refusal(), direct.refusal());
    EXPECT_EQ(replayed.refusal(), "forward to output 5 (the stage has 2)");
    // A log cut short is not trusted.
    BatchEmitter again(replay_out, replay_failures);
    again.set_input(&in, 0, 4);
    EXPECT_FALSE(replay_calls(std::string_view(log.data(), log.size() - 3), again, in.records.data(), 4, problem));
}

TEST(Emitter, KnowsWhichInputsACallLeftUnaccounted) {
    Batch in = make_batch(5);
    std::vector<Batch> out(1);
    FailureBatch failures;
    BatchEmitter e(out, failures);
    e.set_input(&in, 0, 5);
    const sluice_emitter *raw = e.raw();
    raw->forward(raw, 0, 0);
    raw->fail(raw, 2, "bad", 3);
    EXPECT_EQ(raw->emit(raw, 3, 4, &in.records[4]), SLUICE_ERROR);
    EXPECT_EQ(e.unaccounted(), (std::vector<uint32_t>{1, 3, 4})) << "a refused emit accounts for nothing";
    EXPECT_EQ(e.refusal(), "emit to output 3 (the stage has 1)");
    e.set_input(&in, 1, 2); // the next call starts a new ledger
    EXPECT_EQ(e.unaccounted(), (std::vector<uint32_t>{0, 1}));
    EXPECT_TRUE(e.refusal().empty());
}

TEST(PoisonBisection, FindsExactlyThePoisonRecordsWithinTwoLog2CallsEach) {
    for (const std::set<uint32_t> &poison : {std::set<uint32_t>{0}, std::set<uint32_t>{511}, std::set<uint32_t>{1023},
                                             std::set<uint32_t>{3, 700, 701}}) {
        const uint32_t n = 1024;
        std::set<uint32_t> done;
        uint32_t deaths = 0;
        auto attempt = [&](uint32_t first, uint32_t count) {
            for (uint32_t p : poison)
                if (p >= first && p < first + count) {
                    ++deaths;
                    return Attempt{Attempt::Outcome::died, WorkerDeath{WorkerDeath::Cause::signal, "SIGSEGV"}, false, {}};
                }
            for (uint32_t i = first; i < first + count; ++i) EXPECT_TRUE(done.insert(i).second) << "twice: " << i;
            return Attempt{};
        };
        Bisection b = find_poison(0, n, WorkerDeath{WorkerDeath::Cause::signal, "SIGSEGV"}, attempt);
        std::set<uint32_t> found;
        for (const auto &p : b.poison) found.insert(p.index);
        EXPECT_EQ(found, poison);
        EXPECT_EQ(done.size(), n - poison.size()) << "every other record went through once";
        EXPECT_TRUE(b.untried.empty());
        EXPECT_LE(b.calls, uint32_t(2 * std::log2(n)) * poison.size());
        EXPECT_LE(deaths, uint32_t(std::log2(n)) * poison.size());
    }
}

TEST(PoisonBisection, StopsWhenNoWorkerMayBeStartedAndSaysWhatWasNotTried) {
    // Every record kills; the third death allows no new worker.
    int deaths = 0;
    auto attempt = [&](uint32_t, uint32_t count) {
        Attempt a{Attempt::Outcome::died, WorkerDeath{WorkerDeath::Cause::signal, "SIGSEGV"}, false, {}};
        if (++deaths == 3) {
            a.last = true;
            a.stop_reason = "max_restarts";
        }
        (void)count;
        return a;
    };
    Bisection b = find_poison(10, 4, WorkerDeath{WorkerDeath::Cause::signal, "SIGSEGV"}, attempt);
    // [10,12) died, [10,11) died: poison 10; [11,12) died last: poison 11; [12,14) untried.
    ASSERT_EQ(b.poison.size(), 2u);
    EXPECT_EQ(b.poison[0].index, 10u);
    EXPECT_EQ(b.poison[1].index, 11u);
    ASSERT_TRUE(b.stopped_by);
    EXPECT_EQ(b.stopped_by->what, "max_restarts");
    ASSERT_EQ(b.untried.size(), 1u);
    EXPECT_EQ(b.untried[0], (std::pair<uint32_t, uint32_t>{12, 2}));
}

TEST(RestartBudget, CountsTheRestartsOfTheLastMinute) {
    RestartBudget budget(3);
    auto t0 = RestartBudget::Clock::now();
    EXPECT_TRUE(budget.take(t0));
    EXPECT_TRUE(budget.take(t0 + std::chrono::seconds(10)));
    EXPECT_TRUE(budget.take(t0 + std::chrono::seconds(20)));
    EXPECT_FALSE(budget.take(t0 + std::chrono::seconds(30)));
    EXPECT_TRUE(budget.take(t0 + std::chrono::seconds(61))) << "the first has left the window";
    EXPECT_FALSE(budget.take(t0 + std::chrono::seconds(62)));
    RestartBudget none(0);
    EXPECT_FALSE(none.take());
}

// --- the two instances behind one interface ----------------------------------

namespace {

const sluice_host *test_host() { return test::quiet_host(); }

struct Faulty {
    LoadedStage stage;
    std::string config;
    InstanceSetup setup(uint32_t timeout_ms = 0) const {
        InstanceSetup s;
        s.desc = stage.desc;
        s.host = test_host();
        s.library_path = stage.library->path();
        s.stage_id = "bad";
        s.config_json = config;
        s.base_dir = ".";
        s.kind = SLUICE_KIND_TRANSFORMER;
        s.timeout_ms = timeout_ms;
        return s;
    }
};

Faulty faulty(const std::string &config) {
    PluginRegistry registry({SLUICE_TEST_PLUGIN_DIR});
    return Faulty{registry.find(SLUICE_KIND_TRANSFORMER, "faulty", std::nullopt), config};
}

std::unique_ptr<StageInstance> make(bool isolated, const Faulty &f, PipelineControl &control, StageMetrics &metrics,
                                    const WorkerLimits &limits = {}) {
    std::string problem;
    std::unique_ptr<StageInstance> inst;
    if (isolated) inst = IsolatedInstance::create(f.setup(limits.timeout_ms), limits, control, metrics, problem);
    else inst = InProcessInstance::create(f.setup(limits.timeout_ms), std::make_shared<std::atomic<int>>(0), problem);
    EXPECT_TRUE(inst) << problem;
    if (inst) {
        EXPECT_EQ(inst->start(), "");
    }
    return inst;
}

struct CallOutput {
    CallResult result;
    std::vector<std::string> out;
    std::vector<uint32_t> unaccounted;
};

CallOutput call(StageInstance &inst, const Batch &in) {
    std::vector<Batch> outputs(1);
    FailureBatch failures;
    BatchEmitter e(outputs, failures);
    e.set_input(&in, 0, uint32_t(in.size()));
    CallOutput o;
    o.result = inst.process(in.records.data(), uint32_t(in.size()), e, nullptr);
    for (const auto &r : outputs[0].records) o.out.push_back(payload(r));
    o.unaccounted = e.unaccounted();
    return o;
}

} // namespace

class BothInstances : public ::testing::TestWithParam<bool> {};

TEST_P(BothInstances, AWellBehavedCallGivesTheSameResults) {
    PipelineControl control;
    StageMetrics metrics(1);
    auto inst = make(GetParam(), faulty(R"({"fault":"never_forward_last"})"), control, metrics);
    ASSERT_TRUE(inst);
    EXPECT_EQ(inst->isolated(), GetParam());
    Batch in = make_batch(10);
    CallOutput o = call(*inst, in);
    ASSERT_TRUE(o.result.ok()) << o.result.message;
    EXPECT_EQ(o.out.size(), 9u);
    EXPECT_EQ(o.out.front(), "{\"id\":1}");
    EXPECT_EQ(o.unaccounted, std::vector<uint32_t>{9});
    // And again: the instance keeps going.
    EXPECT_EQ(call(*inst, make_batch(3)).out.size(), 2u);
    inst->stop();
}

TEST_P(BothInstances, AnUnknownStatusComesBackAsItWas) {
    PipelineControl control;
    StageMetrics metrics(1);
    auto inst = make(GetParam(), faulty(R"({"fault":"garbage_status","nth":2})"), control, metrics);
    ASSERT_TRUE(inst);
    CallOutput o = call(*inst, make_batch(4));
    EXPECT_FALSE(o.result.death);
    EXPECT_EQ(int(o.result.status), 12345);
    EXPECT_EQ(o.result.message, "faulty: the fault struck");
}

INSTANTIATE_TEST_SUITE_P(InProcessAndIsolated, BothInstances, ::testing::Values(false, true),
                         [](const auto &info) { return info.param ? "isolated" : "in_process"; });

TEST(IsolatedInstance, ACrashIsADeathAndARestartGoesOn) {
    PipelineControl control;
    StageMetrics metrics(1);
    auto inst = make(true, faulty(R"({"fault":"crash","nth":5})"), control, metrics);
    ASSERT_TRUE(inst);
    CallOutput o = call(*inst, make_batch(10));
    ASSERT_TRUE(o.result.death);
    EXPECT_EQ(o.result.death->cause, WorkerDeath::Cause::signal);
    EXPECT_EQ(o.result.death->what, "SIGSEGV");
    EXPECT_TRUE(o.out.empty()) << "nothing from a dead worker counts";
    EXPECT_EQ(inst->restart(), "");
    CallOutput again = call(*inst, make_batch(4)); // a new instance: its 5th record is yet to come
    ASSERT_TRUE(again.result.ok()) << again.result.message;
    EXPECT_EQ(again.out.size(), 4u);
}

TEST(IsolatedInstance, ACallPastItsTimeLimitIsKilledForReal) {
    PipelineControl control;
    StageMetrics metrics(1);
    WorkerLimits limits;
    limits.timeout_ms = 200;
    auto inst = make(true, faulty(R"({"fault":"loop","nth":2})"), control, metrics, limits);
    ASSERT_TRUE(inst);
    auto t0 = std::chrono::steady_clock::now();
    CallOutput o = call(*inst, make_batch(3));
    ASSERT_TRUE(o.result.death);
    EXPECT_EQ(o.result.death->cause, WorkerDeath::Cause::timeout);
    EXPECT_EQ(o.result.death->what, "timed out after 200 ms");
    EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(5));
}

TEST(IsolatedInstance, AWorkerPastItsMemoryLimitIsKilled) {
    PipelineControl control;
    StageMetrics metrics(1);
    WorkerLimits limits;
    limits.memory_limit_mb = 300;
    auto inst = make(true, faulty(R"({"fault":"allocate","nth":1})"), control, metrics, limits);
    ASSERT_TRUE(inst);
    CallOutput o = call(*inst, make_batch(2));
    ASSERT_TRUE(o.result.death);
    EXPECT_EQ(o.result.death->cause, WorkerDeath::Cause::memory_limit);
    EXPECT_GE(inst->peak_rss_mb(), 300u);
}

TEST(IsolatedInstance, TheStopFlagReachesAPluginWaitingForIt) {
    PipelineControl control;
    StageMetrics metrics(1);
    auto inst = make(true, faulty(R"({"fault":"wait_for_stop","nth":1})"), control, metrics);
    ASSERT_TRUE(inst);
    std::thread stopper([&] {
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
        control.request_stop();
    });
    CallOutput o = call(*inst, make_batch(2));
    stopper.join();
    ASSERT_TRUE(o.result.ok()) << o.result.message;
    EXPECT_EQ(o.out.size(), 2u);
}

TEST(IsolatedInstance, LogLinesAndCountersCrossTheBoundary) {
    PipelineControl control;
    StageMetrics metrics(1);
    auto inst = make(true, faulty(R"({"fault":"log","match":"\"id\":2}"})"), control, metrics);
    ASSERT_TRUE(inst);
    CallOutput o = call(*inst, make_batch(3));
    ASSERT_TRUE(o.result.ok()) << o.result.message;
    EXPECT_EQ(metrics.counters()["faulty_hits"], 1);
    // And what the plugin declared of its metrics.
    const MetricsDeclaration &declared = inst->features().metrics;
    ASSERT_NE(declared.find("faulty_hits"), nullptr);
    EXPECT_EQ(declared.find("faulty_hits")->help, "records the fault struck");
    EXPECT_EQ(declared.render_summary(metrics.counters()), "1 records struck");
}

// --- the error path ------------------------------------------------------------

TEST(FailureRouter, DeadLettersCarryTheRecordAndWhyAndFailStopsTheRun) {
    Batch in = make_batch(3);
    FailureBatch failures;
    failures.items.push_back(Failure{FailureKind::failed, in.records[0], "worker crashed: SIGSEGV"});
    failures.items.push_back(Failure{FailureKind::rejected, in.records[1], "too big"});
    failures.storage->parents.push_back(in.storage);

    StageSpec spec;
    spec.id = "bad";
    spec.plugin = "faulty";
    spec.kind = SLUICE_KIND_TRANSFORMER;
    spec.on_error.then = ErrorPolicy::Then::dead_letter;
    PipelineControl control;
    StageMetrics metrics(1);
    FailureRouter router(spec, control, metrics);
    auto queue = std::make_shared<BatchQueue>(4, false, 1);
    router.set_dead_letter(queue);
    ASSERT_TRUE(router.route(failures, metrics.worker(0), {}));
    queue->producer_done();
    auto dead = queue->pop();
    ASSERT_TRUE(dead);
    ASSERT_EQ(dead->records.size(), 1u) << "a rejected record is not dead-lettered";
    std::string problem;
    auto letter = dead_letter::read(payload(dead->records[0]), problem);
    ASSERT_TRUE(letter) << problem;
    EXPECT_EQ(letter->error, "worker crashed: SIGSEGV");
    EXPECT_EQ(letter->payload, "{\"id\":1}");
    EXPECT_EQ(metrics.worker(0).dead_lettered.load(), 1u);
    EXPECT_FALSE(control.failed());

    spec.on_error.then = ErrorPolicy::Then::fail;
    FailureRouter failing(spec, control, metrics);
    failing.route(failures, metrics.worker(0), {});
    EXPECT_TRUE(control.failed());
    EXPECT_NE(control.abort_message().find("stage 'bad' (transformer faulty): record 1 failed and on_error is fail: "
                                           "worker crashed: SIGSEGV"),
              std::string::npos)
        << control.abort_message();
}

TEST(SharedRegion, AWorkerCannotShrinkWhatTheHostReads) {
    // A hostile worker truncating its output region under the host's reads
    // would kill the host with SIGBUS: the region only grows.
    worker::SharedRegion region;
    ASSERT_EQ(region.create("test"), "");
    ASSERT_TRUE(region.write(0, std::string(1 << 20, 'x')));
    EXPECT_GE(region.file_size(), size_t(1 << 20));
    EXPECT_NE(::ftruncate(region.fd(), 0), 0) << "sealed against shrinking";
    EXPECT_EQ(errno, EPERM);
    EXPECT_GE(region.file_size(), size_t(1 << 20));
    EXPECT_TRUE(region.reserve(size_t(2) << 20)) << "it may still grow";
}
