// Live reload and plugin swap under load, as an operator does them: edit the
// manifest or replace a plugin's .so, then SIGHUP, `sluice reload` or POST
// /reload. Every record is delivered once, each as the version active when
// it passed the changed stage; a refused reload keeps the old pipeline.
#include "child_process.hpp"
#include "http_client.hpp"
#include "record_accounting.hpp"
#include "temp_dir.hpp"

#include <boost/json.hpp>
#include <gtest/gtest.h>

#include <atomic>
#include <csignal>
#include <filesystem>
#include <map>
#include <set>
#include <thread>

using namespace sluice::test;
namespace bj = boost::json;
namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

const std::string kSwapPlugins = SLUICE_SWAP_PLUGIN_DIR;
const std::string kTestPlugins = SLUICE_TEST_PLUGIN_DIR;
const std::string kSecret = "s3cr3t-reload-token";

// Replaces the plugin file the way a deployment does: a new file renamed
// over the old one (the running library is not touched).
void install_plugin(const TempDir &dir, int version) {
    fs::copy_file(kSwapPlugins + "/v" + std::to_string(version) + "/c_tag.so", dir / "plugins/c_tag.so.new",
                  fs::copy_options::overwrite_existing);
    fs::rename(dir / "plugins/c_tag.so.new", dir / "plugins/c_tag.so");
}

// The manifest: SOURCE -> tag (c_tag from plugins/) -> gate (amount >= MIN)
// -> out (append) and rejects (append); a slow probe sink holds the pace.
std::string manifest(const std::string &source, double min_amount, uint32_t gate_threads = 1,
                     const std::string &extra_rule = "") {
    return R"({"name":"live","stages":[)" + source + R"(,
      {"id":"tag","kind":"transformer","plugin":"c_tag","library":"plugins/c_tag.so"},
      {"id":"gate","kind":"validator","plugin":"rules","threads":)" +
           std::to_string(gate_threads) + R"(,"config":{"rules":[{"field":"amount","min":)" + std::to_string(min_amount) +
           "}" + extra_rule + R"(]}},
      {"id":"out","kind":"loader","plugin":"file","inputs":["gate.pass"],"config":{"path":"out.ndjson","append":true}},
      {"id":"rejects","kind":"loader","plugin":"file","inputs":["gate.fail"],"config":{"path":"rejects.ndjson","append":true}},
      {"id":"pace","kind":"loader","plugin":"probe_sink","library":")" +
           kTestPlugins + R"(/probe.so","inputs":["tag"],
       "config":{"batch_delay_ms":15,"durable":true,"token":"${RELOAD_TOKEN}","reveal":true}}]})";
}

HttpReply post_reload(int admin) { return http_request(admin, "POST", "/reload", "", {}, "application/json", 60); }

struct Delivered {
    std::map<int64_t, int> times;     // id -> how many times written (out + rejects)
    std::vector<std::string> tags;    // out.ndjson's tagged_by, in file order
    std::vector<double> rejected_amounts;
};

Delivered read_delivered(const TempDir &dir, const std::string &id_field) {
    Delivered d;
    for (const std::string &line : read_lines(dir / "out.ndjson")) {
        bj::object o = bj::parse(line).as_object();
        d.times[o.at(id_field).to_number<int64_t>()]++;
        d.tags.emplace_back(o.at("tagged_by").as_string());
    }
    for (const std::string &line : read_lines(dir / "rejects.ndjson")) {
        bj::object o = bj::parse(line).as_object();
        d.times[o.at(id_field).to_number<int64_t>()]++;
        d.rejected_amounts.push_back(o.at("amount").to_number<double>());
    }
    return d;
}

} // namespace

// generate -> ... : a rules change by SIGHUP, a refused reload, then a .so
// swap by POST /reload, all while records flow.
TEST(LiveReload, GenerateRunTakesAConfigChangeAndAPluginSwapLosingNothing) {
    TempDir dir;
    fs::create_directories(dir / "plugins");
    install_plugin(dir, 1);
    const int count = 30000;
    const std::string source = R"({"id":"src","kind":"extractor","plugin":"generate","batch_size":50,"config":{"count":)" +
                               std::to_string(count) + "}}";
    dir.write("m.json", manifest(source, 0));
    ::setenv("RELOAD_TOKEN", kSecret.c_str(), 1);
    ChildProcess p({sluice_binary(), "run", dir / "m.json", "--admin", "127.0.0.1:0", "--report", dir / "report.json",
                    "--log-level", "info"});
    const int admin = port_after(p, "admin endpoint listening on http://127.0.0.1:");
    ASSERT_GT(admin, 0) << p.err_so_far();
    ASSERT_TRUE(p.wait_for_err("running 6 stages")) << p.err_so_far();

    // 1. The gate's rule changes (SIGHUP).
    std::this_thread::sleep_for(300ms);
    dir.write("m.json", manifest(source, 500));
    p.signal(SIGHUP);
    ASSERT_TRUE(p.wait_for_err("reload: applied: stage 'gate': config")) << p.err_so_far();

    // 2. A broken manifest and one that needs a restart are refused; the
    // run goes on with what it had.
    dir.write("m.json", manifest(source, 500, 1, R"(,{"field":"amount","bogus":1})"));
    HttpReply refused = post_reload(admin);
    EXPECT_EQ(refused.status, 409) << refused.body;
    EXPECT_NE(refused.body.find("/stages/2/config/rules/1/bogus"), std::string::npos) << refused.body;
    dir.write("m.json", manifest(source, 500, 2));
    refused = post_reload(admin);
    EXPECT_EQ(refused.status, 409) << refused.body;
    EXPECT_NE(refused.body.find("stage 'gate': threads changed; that needs a restart"), std::string::npos) << refused.body;
    ProcessResult cli = run_sluice({"reload", "127.0.0.1:" + std::to_string(admin)});
    EXPECT_EQ(cli.exit_code, 1) << cli.out << cli.err;
    EXPECT_NE(cli.err.find("reload refused; the pipeline runs as it was"), std::string::npos) << cli.err;

    // 3. A new build of the tagging plugin replaces the file; reload.
    dir.write("m.json", manifest(source, 500));
    install_plugin(dir, 2);
    HttpReply swapped = post_reload(admin);
    ASSERT_EQ(swapped.status, 200) << swapped.body << p.err_so_far();
    EXPECT_NE(swapped.body.find("stage 'tag': plugin file replaced (version 1.0.0 -> 2.0.0)"), std::string::npos)
        << swapped.body;
    bj::object status = bj::parse(http_request(admin, "GET", "/status", "", {}, "", 10).body).as_object();
    const bj::array &history = stage_of(status, "tag").at("plugin_versions").as_array();
    ASSERT_EQ(history.size(), 2u) << status;
    EXPECT_EQ(history[0].at("version"), "1.0.0");
    EXPECT_EQ(history[1].at("version"), "2.0.0");
    EXPECT_EQ(status.at("status"), "running") << "the reloads happened while records flowed";

    ProcessResult r = p.wait();
    ASSERT_EQ(r.exit_code, 0) << r.err;

    // Every id exactly once; the tags switch from v1 to v2 once, in order.
    Delivered d = read_delivered(dir, "id");
    EXPECT_EQ(d.times.size(), size_t(count));
    for (const auto &[id, n] : d.times) ASSERT_EQ(n, 1) << "record " << id;
    size_t first_v2 = std::find(d.tags.begin(), d.tags.end(), "v2") - d.tags.begin();
    EXPECT_GT(first_v2, 0u) << "some records passed version 1";
    EXPECT_LT(first_v2, d.tags.size()) << "some records passed version 2";
    for (size_t i = 0; i < d.tags.size(); ++i)
        ASSERT_EQ(d.tags[i], i < first_v2 ? "v1" : "v2") << "record " << i << " of out.ndjson";
    // Rejected only by the new rule, never by the old one (min 0).
    EXPECT_FALSE(d.rejected_amounts.empty());
    for (double a : d.rejected_amounts) EXPECT_LT(a, 500);

    bj::object report = bj::parse(read_file(dir / "report.json")).as_object();
    EXPECT_EQ(stage_of(report, "tag").at("plugin_versions").as_array().size(), 2u);
    EXPECT_EQ(stage_of(report, "tag").at("plugin_version"), "2.0.0");
    // The secret was logged by the plugin at every create (the reloads made
    // new instances) and never shown.
    EXPECT_NE(r.err.find("my token is ***"), std::string::npos) << r.err;
    for (const std::string &text : {r.err, r.out, read_file(dir / "report.json"), refused.body, swapped.body})
        EXPECT_EQ(text.find(kSecret), std::string::npos);
}

// http ingest from concurrent clients: a swap mid-stream keeps the promise
// that a 202 means delivered, and loses nothing.
TEST(LiveReload, IngestKeepsItsPromiseAcrossAPluginSwap) {
    TempDir dir;
    fs::create_directories(dir / "plugins");
    install_plugin(dir, 1);
    const std::string source = R"({"id":"src","kind":"extractor","plugin":"http","batch_size":20,"config":{"port":0}})";
    dir.write("m.json", manifest(source, 0));
    ::setenv("RELOAD_TOKEN", kSecret.c_str(), 1);
    ChildProcess p({sluice_binary(), "run", dir / "m.json", "--admin", "127.0.0.1:0"});
    const int admin = port_after(p, "admin endpoint listening on http://127.0.0.1:");
    const int ingest = port_after(p, "[src] listening on http://127.0.0.1:");
    ASSERT_GT(admin, 0) << p.err_so_far();
    ASSERT_GT(ingest, 0) << p.err_so_far();

    // Four clients post numbered records until told to stop; each request
    // answered 202 is a promise that its records are in out.ndjson.
    std::atomic<bool> stop{false};
    std::atomic<int> next{0};
    std::mutex m;
    std::set<int> promised;
    std::vector<std::thread> clients;
    for (int c = 0; c < 4; ++c)
        clients.emplace_back([&] {
            while (!stop) {
                std::string body;
                std::vector<int> ids;
                for (int i = 0; i < 10; ++i) {
                    int id = next++;
                    ids.push_back(id);
                    body += R"({"n":)" + std::to_string(id) + R"(,"amount":)" + std::to_string(id % 1000) + "}\n";
                }
                HttpReply r = http_request(ingest, "POST", "/ingest", body, {}, "application/x-ndjson", 30);
                if (r.status == 202) {
                    std::lock_guard lock(m);
                    promised.insert(ids.begin(), ids.end());
                }
            }
        });
    std::this_thread::sleep_for(500ms);
    install_plugin(dir, 2);
    HttpReply swapped = post_reload(admin);
    EXPECT_EQ(swapped.status, 200) << swapped.body << p.err_so_far();
    std::this_thread::sleep_for(500ms);
    // And a config change of the gate while they post.
    dir.write("m.json", manifest(source, 300));
    EXPECT_EQ(post_reload(admin).status, 200);
    // The listener answers its clients once their records are delivered:
    // new instances could not, so changing it is refused.
    const std::string bigger = R"({"id":"src","kind":"extractor","plugin":"http","batch_size":20,"config":{"port":0,"buffer_records":777}})";
    dir.write("m.json", manifest(bigger, 300));
    HttpReply refused = post_reload(admin);
    EXPECT_EQ(refused.status, 409) << refused.body;
    EXPECT_NE(refused.body.find("confirms delivery to its source through the running instances"), std::string::npos)
        << refused.body;
    std::this_thread::sleep_for(300ms);
    stop = true;
    for (auto &t : clients) t.join();
    p.signal(SIGTERM);
    ProcessResult r = p.wait();
    ASSERT_EQ(r.exit_code, 0) << r.err;

    Delivered d = read_delivered(dir, "n");
    ASSERT_GT(promised.size(), 100u);
    for (int id : promised) ASSERT_EQ(d.times.count(id), 1u) << "record " << id << " was answered 202 but is not delivered";
    for (const auto &[id, n] : d.times) ASSERT_EQ(n, 1) << "record " << id;
    EXPECT_NE(std::find(d.tags.begin(), d.tags.end(), "v1"), d.tags.end());
    EXPECT_NE(std::find(d.tags.begin(), d.tags.end(), "v2"), d.tags.end());
    EXPECT_EQ(r.err.find(kSecret), std::string::npos);
}

// A library the host refuses (another ABI) leaves the old one running.
TEST(LiveReload, ARefusedLibraryKeepsTheRunningOne) {
    TempDir dir;
    fs::create_directories(dir / "plugins");
    install_plugin(dir, 1);
    const std::string source =
        R"({"id":"src","kind":"extractor","plugin":"generate","batch_size":50,"config":{"count":6000}})";
    dir.write("m.json", manifest(source, 0));
    ::setenv("RELOAD_TOKEN", kSecret.c_str(), 1);
    ChildProcess p({sluice_binary(), "run", dir / "m.json", "--admin", "127.0.0.1:0", "--report", dir / "report.json"});
    const int admin = port_after(p, "admin endpoint listening on http://127.0.0.1:");
    ASSERT_GT(admin, 0) << p.err_so_far();
    fs::copy_file(std::string(SLUICE_BAD_PLUGIN_DIR) + "/abi2.so", dir / "plugins/c_tag.so.new");
    fs::rename(dir / "plugins/c_tag.so.new", dir / "plugins/c_tag.so");
    HttpReply refused = post_reload(admin);
    EXPECT_EQ(refused.status, 409) << refused.body;
    EXPECT_NE(refused.body.find("built for Sluice ABI 2.0"), std::string::npos) << refused.body;
    ProcessResult r = p.wait();
    ASSERT_EQ(r.exit_code, 0) << r.err;
    Delivered d = read_delivered(dir, "id");
    EXPECT_EQ(d.times.size(), 6000u);
    for (const auto &t : d.tags) ASSERT_EQ(t, "v1");
    bj::object report = bj::parse(read_file(dir / "report.json")).as_object();
    EXPECT_EQ(stage_of(report, "tag").at("plugin_versions").as_array().size(), 1u);
}

// A loader that makes each batch durable (append) can change its config:
// the old instance is flushed and closed, the new one takes the next batch.
TEST(LiveReload, AnAppendingLoaderMovesToAnotherFileLosingNothing) {
    TempDir dir;
    auto m = [&](const std::string &file, const std::string &more) {
        return R"({"name":"move","stages":[
          {"id":"src","kind":"extractor","plugin":"generate","batch_size":50,"config":{"count":8000}},
          {"id":"out","kind":"loader","plugin":"file","config":{"path":")" + file + R"(","append":true}},
          {"id":"pace","kind":"loader","plugin":"probe_sink","library":")" + kTestPlugins +
               R"(/probe.so","inputs":["src"],"config":{"batch_delay_ms":15,"durable":true)" + more + "}}]}";
    };
    dir.write("m.json", m("a.ndjson", ""));
    ChildProcess p({sluice_binary(), "run", dir / "m.json", "--admin", "127.0.0.1:0"});
    const int admin = port_after(p, "admin endpoint listening on http://127.0.0.1:");
    ASSERT_GT(admin, 0) << p.err_so_far();
    ASSERT_TRUE(p.wait_for_err("admin endpoint")) << p.err_so_far();
    std::this_thread::sleep_for(400ms);
    dir.write("m.json", m("b.ndjson", ""));
    HttpReply moved = post_reload(admin);
    EXPECT_EQ(moved.status, 200) << moved.body;
    // A secret that is not set is refused before anything changes.
    dir.write("m.json", m("b.ndjson", R"(,"token":"${RELOAD_UNSET_VARIABLE}")"));
    HttpReply refused = post_reload(admin);
    EXPECT_EQ(refused.status, 409) << refused.body;
    EXPECT_NE(refused.body.find("/stages/2/config/token"), std::string::npos) << refused.body;
    ProcessResult r = p.wait();
    ASSERT_EQ(r.exit_code, 0) << r.err;
    std::map<int64_t, int> seen;
    auto a = read_lines(dir / "a.ndjson"), b = read_lines(dir / "b.ndjson");
    EXPECT_FALSE(a.empty());
    EXPECT_FALSE(b.empty());
    for (const auto *lines : {&a, &b})
        for (const std::string &line : *lines) seen[bj::parse(line).at("id").to_number<int64_t>()]++;
    EXPECT_EQ(seen.size(), 8000u);
    for (const auto &[id, n] : seen) ASSERT_EQ(n, 1) << "record " << id;
    // In order: a.ndjson holds the first records, b.ndjson the rest.
    EXPECT_EQ(bj::parse(a.back()).at("id").to_number<int64_t>() + 1, bj::parse(b.front()).at("id").to_number<int64_t>());
}

// The graph changes under load: a transformer inserted before a loader and
// a second loader added, later both removed. Extraction pauses while what is
// in flight drains; nothing is lost, nothing doubled, the order kept.
TEST(LiveReload, StagesAreAddedAndRemovedWhileRecordsFlow) {
    TempDir dir;
    fs::create_directories(dir / "plugins");
    install_plugin(dir, 1);
    const std::string head =
        R"({"name":"graph","stages":[{"id":"src","kind":"extractor","plugin":"generate","batch_size":50,"config":{"count":12000}},
        {"id":"pace","kind":"loader","plugin":"probe_sink","library":")" + kTestPlugins +
        R"(/probe.so","inputs":["src"],"config":{"batch_delay_ms":15,"durable":true}},
        {"id":"gate","kind":"validator","plugin":"rules","inputs":["src"],"config":{"rules":[{"field":"amount","min":0}]}},)";
    const std::string plain = head + R"(
        {"id":"out","kind":"loader","plugin":"file","inputs":["gate.pass"],"config":{"path":"out.ndjson","append":true}}]})";
    const std::string grown = head + R"(
        {"id":"tag","kind":"transformer","plugin":"c_tag","library":"plugins/c_tag.so","inputs":["gate.pass"]},
        {"id":"out","kind":"loader","plugin":"file","inputs":["tag"],"config":{"path":"out.ndjson","append":true}},
        {"id":"copy","kind":"loader","plugin":"file","inputs":["tag"],"config":{"path":"copy.ndjson","append":true}}]})";
    dir.write("m.json", plain);
    ChildProcess p({sluice_binary(), "run", dir / "m.json", "--admin", "127.0.0.1:0", "--report", dir / "report.json"});
    const int admin = port_after(p, "admin endpoint listening on http://127.0.0.1:");
    ASSERT_GT(admin, 0) << p.err_so_far();
    std::this_thread::sleep_for(500ms);
    dir.write("m.json", grown);
    HttpReply added = post_reload(admin);
    ASSERT_EQ(added.status, 200) << added.body << p.err_so_far();
    EXPECT_NE(added.body.find("stage 'tag': added"), std::string::npos) << added.body;
    EXPECT_NE(added.body.find("stage 'out': inputs now [tag]"), std::string::npos) << added.body;
    std::this_thread::sleep_for(1s);
    // Removing the extractor would need a restart: refused, nothing changes.
    std::string no_source = grown;
    no_source.replace(no_source.find("\"id\":\"src\""), 10, "\"id\":\"new\"");
    for (size_t at; (at = no_source.find("[\"src\"]")) != std::string::npos;) no_source.replace(at, 7, "[\"new\"]");
    dir.write("m.json", no_source);
    HttpReply refused = post_reload(admin);
    EXPECT_EQ(refused.status, 409) << refused.body;
    EXPECT_NE(refused.body.find("removing an extractor needs a restart"), std::string::npos) << refused.body;
    dir.write("m.json", plain);
    HttpReply shrunk = post_reload(admin);
    ASSERT_EQ(shrunk.status, 200) << shrunk.body << p.err_so_far();
    EXPECT_NE(shrunk.body.find("stage 'copy': removed"), std::string::npos) << shrunk.body;
    ProcessResult r = p.wait();
    ASSERT_EQ(r.exit_code, 0) << r.err;

    std::vector<int64_t> ids;
    size_t tagged = 0;
    for (const std::string &line : read_lines(dir / "out.ndjson")) {
        bj::object o = bj::parse(line).as_object();
        ids.push_back(o.at("id").to_number<int64_t>());
        tagged += o.contains("tagged_by");
    }
    ASSERT_EQ(ids.size(), 12000u) << "every record once";
    for (size_t i = 0; i < ids.size(); ++i) ASSERT_EQ(ids[i], int64_t(i + 1)) << "in order, none twice";
    const auto copies = read_lines(dir / "copy.ndjson");
    EXPECT_GT(tagged, 0u);
    EXPECT_LT(tagged, 12000u);
    EXPECT_EQ(copies.size(), tagged) << "the added loader got what passed the added transformer";
    // The report has the pipeline's final shape.
    bj::object report = bj::parse(read_file(dir / "report.json")).as_object();
    EXPECT_EQ(report.at("stages").as_array().size(), 4u);
}

// An extractor that can resume takes a new config in place: new instances
// go on from the running ones' read positions.
TEST(LiveReload, AnExtractorChangesItsConfigAndGoesOnFromItsPosition) {
    TempDir dir;
    std::string csv = "id,amount\n";
    for (int i = 1; i <= 12000; ++i) csv += std::to_string(i) + "," + std::to_string(i % 500) + ".5\n";
    dir.write("in/orders.csv", csv);
    auto m = [&](const char *infer) {
        return std::string(R"({"name":"csv","stages":[
          {"id":"src","kind":"extractor","plugin":"file","batch_size":50,"config":{"path":"in/*.csv","infer_types":)") +
               infer + R"(}},
          {"id":"out","kind":"loader","plugin":"file","inputs":["src"],"config":{"path":"out.ndjson","append":true}},
          {"id":"pace","kind":"loader","plugin":"probe_sink","library":")" + kTestPlugins +
               R"(/probe.so","inputs":["src"],"config":{"batch_delay_ms":15,"durable":true}}]})";
    };
    dir.write("m.json", m("false"));
    ChildProcess p({sluice_binary(), "run", dir / "m.json", "--admin", "127.0.0.1:0"});
    const int admin = port_after(p, "admin endpoint listening on http://127.0.0.1:");
    ASSERT_GT(admin, 0) << p.err_so_far();
    std::this_thread::sleep_for(600ms);
    dir.write("m.json", m("true"));
    HttpReply changed = post_reload(admin);
    ASSERT_EQ(changed.status, 200) << changed.body << p.err_so_far();
    EXPECT_NE(changed.body.find("stage 'src': config"), std::string::npos) << changed.body;
    ProcessResult r = p.wait();
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const auto lines = read_lines(dir / "out.ndjson");
    ASSERT_EQ(lines.size(), 12000u);
    size_t first_number = lines.size();
    for (size_t i = 0; i < lines.size(); ++i) {
        bj::object o = bj::parse(lines[i]).as_object();
        const bool typed = o.at("id").is_int64();
        ASSERT_EQ(typed ? o.at("id").as_int64() : std::stoll(std::string(o.at("id").as_string())), int64_t(i + 1))
            << "every row once, in order";
        if (typed && first_number == lines.size()) first_number = i;
        ASSERT_EQ(typed, i >= first_number) << "row " << i + 1 << ": read with the old config after the new one";
    }
    EXPECT_GT(first_number, 0u);
    EXPECT_LT(first_number, lines.size());
}
