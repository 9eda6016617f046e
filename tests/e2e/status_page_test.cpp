// The status page the admin endpoint serves at /, tested in a real browser
// (headless Chromium, Debian's package): a running pipeline whose numbers
// move, then its final report; a finished run with gates and dead letters;
// each at 1280x800 and at a phone's width. What the page shows is compared
// with /status, and its graph with the manifest's stages and edges.
#include "child_process.hpp"
#include "eventually.hpp"
#include "free_port.hpp"
#include "headless_chromium.hpp"
#include "http_client.hpp"
#include "temp_dir.hpp"

#include <boost/json.hpp>
#include <gtest/gtest.h>

#include <cmath>
#include <csignal>
#include <filesystem>
#include <map>
#include <memory>
#include <set>
#include <thread>

using namespace sluice::test;
namespace bj = boost::json;
using namespace std::chrono_literals;

namespace {

#define SKIP_WITHOUT_CHROMIUM()                                                                                        \
    if (HeadlessChromium::binary().empty())                                                                            \
    GTEST_SKIP() << "Chromium is not installed (apt-get install chromium): the status page is not tested in a browser"

// What the page shows, read from its DOM: per stage its counts and whether
// its box is on screen, the edges drawn (or listed, on a narrow screen), the
// figures at the top, the phase, how far the page overflows sideways and
// whether two boxes overlap.
const char *kReadPage = R"JS((() => {
  const visible = (e) => { const r = e.getBoundingClientRect(); return r.width > 0 && r.height > 0; };
  const stages = {};
  const boxes = [];
  for (const n of document.querySelectorAll('.node[data-stage]')) {
    const counts = {};
    for (const dd of n.querySelectorAll('dd[data-count]')) counts[dd.dataset.count] = Number(dd.textContent.replace(/,/g, ''));
    stages[n.dataset.stage] = { counts, visible: visible(n), kind: n.dataset.kind,
      rate: n.querySelector('[data-field="rate"]').textContent, busy: n.querySelector('[data-field="busy"]').textContent,
      queue: (n.querySelector('[data-field="queue"]') || {}).textContent || '',
      spark: (n.querySelector('svg.spark polyline').getAttribute('points') || '').split(' ').filter(Boolean).length };
    boxes.push(n.getBoundingClientRect());
  }
  let overlap = false;
  for (let i = 0; i < boxes.length; i += 1) for (let j = i + 1; j < boxes.length; j += 1) {
    const a = boxes[i], b = boxes[j];
    if (a.left < b.right - 1 && b.left < a.right - 1 && a.top < b.bottom - 1 && b.top < a.bottom - 1) overlap = true;
  }
  const drawn = (e) => { const r = e.getBoundingClientRect(); return r.width > 0 || r.height > 0; };  // a level line has no height
  const edges = [...new Set([...document.querySelectorAll('[data-edge]')].filter(drawn).map((e) => e.getAttribute('data-edge')))];
  const tiles = {};
  for (const t of document.querySelectorAll('[data-tile]')) tiles[t.dataset.tile] = t.querySelector('.value').textContent;
  const reasons = [...document.querySelectorAll('.reason-card td:not(.n)')].map((td) => td.textContent);
  return { phase: document.getElementById('phase').dataset.phase, stages, edges, tiles, reasons, overlap,
           banner: document.getElementById('banner').hidden ? '' : document.getElementById('banner').textContent,
           column: document.getElementById('graph').classList.contains('column'),
           overflow: document.documentElement.scrollWidth - window.innerWidth };
})())JS";

bj::object read_page(HeadlessChromium &browser) { return browser.evaluate(kReadPage).as_object(); }

bj::object read_status(int admin, const std::string &token = "") {
    std::vector<std::pair<std::string, std::string>> headers;
    if (!token.empty()) headers.emplace_back("Authorization", "Bearer " + token);
    HttpReply r = http_request(admin, "GET", "/status", "", headers, "application/json", 10);
    if (r.status != 200) throw std::runtime_error("/status answered " + std::to_string(r.status) + ": " + r.body);
    return bj::parse(r.body).as_object();
}

uint64_t count(const bj::value &v) { return v.to_number<uint64_t>(); }

// Stage -> "in out rejected failed", from /status and from the page.
std::map<std::string, std::string> counts_in_status(const bj::object &status) {
    std::map<std::string, std::string> out;
    for (const auto &s : status.at("stages").as_array())
        out[std::string(s.at("id").as_string())] = std::to_string(count(s.at("in"))) + " " +
                                                   std::to_string(count(s.at("out"))) + " " +
                                                   std::to_string(count(s.at("rejected"))) + " " +
                                                   std::to_string(count(s.at("errors")));
    return out;
}
std::map<std::string, std::string> counts_on_page(const bj::object &page) {
    std::map<std::string, std::string> out;
    for (const auto &[id, s] : page.at("stages").as_object()) {
        const bj::object &c = s.at("counts").as_object();
        out[std::string(id)] = std::to_string(count(c.at("in"))) + " " + std::to_string(count(c.at("out"))) + " " +
                               std::to_string(count(c.at("rejected"))) + " " + std::to_string(count(c.at("failed")));
    }
    return out;
}

std::string with_commas(uint64_t n) {
    std::string digits = std::to_string(n), out;
    for (size_t i = 0; i < digits.size(); ++i) {
        if (i && (digits.size() - i) % 3 == 0) out += ',';
        out += digits[i];
    }
    return out;
}
// As the page and the report table show a share: rounded down, one decimal.
std::string share(double r) {
    char text[32];
    std::snprintf(text, sizeof text, "%.1f%%", std::floor(r * 1000.0) / 10.0);
    return text;
}

// The figures at the top as /status gives them.
std::map<std::string, std::string> tiles_in_status(const bj::object &status) {
    const bj::object &records = status.at("records").as_object(), &quality = status.at("quality").as_object();
    std::map<std::string, std::string> t{{"extracted", with_commas(count(records.at("extracted")))},
                                         {"delivered", with_commas(count(records.at("delivered")))},
                                         {"quality", share(quality.at("quality_score").to_number<double>())},
                                         {"error-rate", share(quality.at("error_rate").to_number<double>())}};
    if (const bj::value *d = status.if_contains("delivery")) t["delivery"] = with_commas(count(d->at("acknowledged")));
    return t;
}

// Waits until the page shows what /status says (the page reads it every
// second); on failure says what differed.
::testing::AssertionResult page_matches_status_with_token(HeadlessChromium &browser, int admin, const std::string &token,
                                                          std::chrono::milliseconds limit = 15s) {
    std::string why;
    const bool same = eventually(
        [&] {
            bj::object status = read_status(admin, token);
            bj::object page = read_page(browser);
            auto in_status = counts_in_status(status), on_page = counts_on_page(page);
            if (in_status != on_page) {
                why = "counts differ: /status " + bj::serialize(bj::value_from(in_status)) + ", page " +
                      bj::serialize(bj::value_from(on_page));
                return false;
            }
            for (const auto &[tile, value] : tiles_in_status(status)) {
                const bj::value *shown = page.at("tiles").as_object().if_contains(tile);
                if (!shown || shown->as_string() != value) {
                    why = "tile " + tile + ": /status says " + value + ", page shows " +
                          (shown ? std::string(shown->as_string()) : "nothing");
                    return false;
                }
            }
            if (page.at("phase").as_string() != status.at("status").as_string()) {
                why = "phase: /status " + std::string(status.at("status").as_string()) + ", page " +
                      std::string(page.at("phase").as_string());
                return false;
            }
            return true;
        },
        limit, 200ms);
    if (same) return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure() << why;
}
::testing::AssertionResult page_matches_status(HeadlessChromium &browser, int admin) {
    return page_matches_status_with_token(browser, admin, "");
}

// Every stage of the manifest has its box on screen and every edge is shown,
// nothing else; no two boxes overlap and nothing overflows sideways.
void expect_graph(const bj::object &page, const std::set<std::string> &stages, const std::set<std::string> &edges) {
    std::set<std::string> shown_stages, shown_edges;
    for (const auto &[id, s] : page.at("stages").as_object()) {
        EXPECT_TRUE(s.at("visible").as_bool()) << "stage " << id << " is not on screen";
        shown_stages.insert(std::string(id));
    }
    for (const auto &e : page.at("edges").as_array()) shown_edges.insert(std::string(e.as_string()));
    EXPECT_EQ(shown_stages, stages);
    EXPECT_EQ(shown_edges, edges);
    EXPECT_FALSE(page.at("overlap").as_bool()) << "two stage boxes overlap";
    EXPECT_LE(page.at("overflow").to_number<int64_t>(), 0) << "the page is wider than the screen";
}

// The screenshot is a PNG of the viewport's size (saved for a reader of the
// test's output, under the build's screenshots/).
void expect_screenshot(HeadlessChromium &browser, const std::string &name, uint32_t width, uint32_t height) {
    std::filesystem::create_directories(SLUICE_SCREENSHOT_DIR);
    const std::string png = browser.screenshot(std::string(SLUICE_SCREENSHOT_DIR) + "/" + name);
    ASSERT_GT(png.size(), 24u);
    EXPECT_EQ(png.substr(1, 3), "PNG");
    auto be32 = [&](size_t at) {
        return uint32_t(uint8_t(png[at])) << 24 | uint32_t(uint8_t(png[at + 1])) << 16 |
               uint32_t(uint8_t(png[at + 2])) << 8 | uint32_t(uint8_t(png[at + 3]));
    };
    EXPECT_EQ(be32(16), width);
    EXPECT_EQ(be32(20), height);
}

// At a phone's width (390x844): the graph becomes one column, the page
// still shows what /status says, every stage and edge, nothing overflows;
// saved as `screenshot`.
void expect_right_at_phone_width(HeadlessChromium &browser, int admin, const std::set<std::string> &stages,
                                 const std::set<std::string> &edges, const std::string &screenshot) {
    browser.resize(390, 844, true);
    ASSERT_TRUE(browser.wait_until("document.getElementById('graph').classList.contains('column')", 10s));
    ASSERT_TRUE(page_matches_status(browser, admin));
    expect_graph(read_page(browser), stages, edges);
    expect_screenshot(browser, screenshot, 390, 844);
}

// The page fetched nothing but from the admin endpoint, and nothing went
// wrong in it (no exception, no refused policy, no console error).
void expect_only_own_requests_and_no_errors(const HeadlessChromium &browser, int admin) {
    const std::string origin = "http://127.0.0.1:" + std::to_string(admin) + "/";
    for (const std::string &url : browser.requests())
        EXPECT_TRUE(url.rfind(origin, 0) == 0 || url.rfind("data:", 0) == 0) << "the page fetched " << url;
    for (const std::string &error : browser.errors()) ADD_FAILURE() << "in the page: " << error;
}

// NDJSON orders `first`..`first+n-1`: every 10th has a negative amount (the
// gate rejects it), every 25th an amount that is not a number (the cast
// fails: a dead letter).
std::string orders(int first, int n) {
    std::string body;
    for (int i = first; i < first + n; ++i) {
        std::string amount = i % 25 == 0 ? "\"abc\"" : i % 10 == 0 ? "-5" : std::to_string(i % 97 + 1);
        body += "{\"order\":" + std::to_string(i) + ",\"amount\":" + amount + "}\n";
    }
    return body;
}

// A service to look at: an HTTP ingest into nothing, run with an admin
// endpoint that wants `token`; `admin` is set to its port (-1: it did not
// start).
std::unique_ptr<ChildProcess> guarded_service(const TempDir &dir, const std::string &token, int &admin) {
    std::string m = dir.write("m.json", R"({"name":"guarded","stages":[
      {"id":"in","kind":"extractor","plugin":"http","config":{"port":)" + std::to_string(free_loopback_port()) + R"(}},
      {"id":"out","kind":"loader","plugin":"null"}]})");
    setenv("SLUICE_ADMIN_TOKEN", token.c_str(), 1);
    auto p = std::make_unique<ChildProcess>(std::vector<std::string>{sluice_binary(), "run", m, "--admin", "127.0.0.1:0"});
    unsetenv("SLUICE_ADMIN_TOKEN");
    admin = port_after(*p, "admin endpoint listening on http://127.0.0.1:");
    return p;
}

} // namespace

TEST(StatusPage, IsServedFromTheBinaryWithItsOwnAssetsOnly) {
    TempDir dir;
    int admin = -1;
    std::unique_ptr<ChildProcess> service = guarded_service(dir, "s3cret-token", admin);
    ChildProcess &p = *service;
    ASSERT_GT(admin, 0) << p.err_so_far();
    // The page and its two files need no token: they hold no data ...
    HttpReply page = http_request(admin, "GET", "/", "", {}, "", 10);
    EXPECT_EQ(page.status, 200) << page.body;
    EXPECT_EQ(page.header("Content-Type"), "text/html; charset=utf-8");
    EXPECT_NE(page.header("Content-Security-Policy").find("default-src 'none'"), std::string::npos);
    EXPECT_NE(page.header("Content-Security-Policy").find("connect-src 'self'"), std::string::npos);
    EXPECT_EQ(page.header("X-Content-Type-Options"), "nosniff");
    EXPECT_NE(page.body.find("<script src=\"status_page.js\""), std::string::npos);
    std::string assets = page.body;
    for (const char *asset : {"/status_page.js", "/status_page.css"}) {
        HttpReply r = http_request(admin, "GET", asset, "", {}, "", 10);
        EXPECT_EQ(r.status, 200) << asset;
        EXPECT_GT(r.body.size(), 1000u) << asset;
        assets += r.body;
    }
    // ... and refer to nothing outside the endpoint (the SVG namespace is a
    // name, not a fetch).
    for (const char *scheme : {"http://", "https://", "//cdn", "@import"}) {
        size_t at = 0;
        while ((at = assets.find(scheme, at)) != std::string::npos) {
            EXPECT_EQ(assets.compare(at, 26, "http://www.w3.org/2000/svg"), 0) << assets.substr(at, 60);
            at += 1;
        }
    }
    // ... while the figures still need it.
    EXPECT_EQ(http_request(admin, "GET", "/status", "", {}, "", 10).status, 401);
    EXPECT_EQ(http_request(admin, "GET", "/status", "", {{"Authorization", "Bearer s3cret-token"}}, "", 10).status, 200);
    // Whatever was wrong, the same 401; an address that keeps guessing gets
    // 429 (even with the right token) until a minute has passed.
    std::set<std::string> answers;
    for (const char *auth : {"", "Bearer", "Bearer wrong", "Basic czNjcmV0LXRva2Vu", "Bearer s3cret-toke"}) {
        HttpReply r = http_request(admin, "GET", "/status", "", {{"Authorization", auth}}, "", 10);
        EXPECT_EQ(r.status, 401) << auth;
        answers.insert(r.body);
    }
    EXPECT_EQ(answers.size(), 1u);
    for (int i = 0; i < 5; ++i) http_request(admin, "GET", "/metrics", "", {{"Authorization", "Bearer guess"}}, "", 10);
    HttpReply throttled = http_request(admin, "GET", "/status", "", {{"Authorization", "Bearer s3cret-token"}}, "", 10);
    EXPECT_EQ(throttled.status, 429) << throttled.body;
    EXPECT_GE(std::atoi(throttled.header("Retry-After").c_str()), 50);
    p.signal(SIGTERM);
    EXPECT_EQ(p.wait(60s).exit_code, 0);
}

TEST(StatusPage, AsksForTheEndpointsTokenThenShowsThePipeline) {
    SKIP_WITHOUT_CHROMIUM();
    TempDir dir;
    int admin = -1;
    std::unique_ptr<ChildProcess> service = guarded_service(dir, "s3cret-token", admin);
    ChildProcess &p = *service;
    ASSERT_GT(admin, 0) << p.err_so_far();
    HeadlessChromium browser(1280, 800);
    browser.navigate("http://127.0.0.1:" + std::to_string(admin) + "/");
    ASSERT_TRUE(browser.wait_until("!document.getElementById('token-form').hidden", 15s));
    EXPECT_EQ(read_page(browser).at("stages").as_object().size(), 0u) << "nothing is shown without the token";
    // A wrong token is refused and asked for again; the right one shows the
    // pipeline.
    const std::string submit = "(() => { document.getElementById('token').value = '%';"
                               " document.getElementById('token-form').requestSubmit(); return true; })()";
    auto with = [&](const std::string &token) {
        std::string js = submit;
        js.replace(js.find('%'), 1, token);
        return js;
    };
    browser.evaluate(with("wrong"));
    ASSERT_TRUE(browser.wait_until("document.getElementById('banner').textContent.includes('refused')", 15s));
    browser.evaluate(with("s3cret-token"));
    ASSERT_TRUE(browser.wait_until("document.querySelectorAll('.node').length === 2", 15s));
    ASSERT_TRUE(page_matches_status_with_token(browser, admin, "s3cret-token"));
    EXPECT_TRUE(browser.wait_until("document.getElementById('token-form').hidden", 5s));
    p.signal(SIGTERM);
    EXPECT_EQ(p.wait(60s).exit_code, 0);
}

TEST(StatusPage, ShowsARunningPipelineAsItsNumbersMoveThenItsFinalReport) {
    SKIP_WITHOUT_CHROMIUM();
    TempDir dir;
    const int ingest = free_loopback_port();
    std::string m = dir.write("m.json", R"({"name":"live_orders","stages":[
      {"id":"orders_in","kind":"extractor","plugin":"http","batch_size":50,"config":{"port":)" + std::to_string(ingest) + R"(}},
      {"id":"shape","kind":"transformer","plugin":"map","inputs":["orders_in"],"on_error":{"dead_letter":"dead"},
       "config":{"cast":{"amount":"float"}}},
      {"id":"gate","kind":"validator","plugin":"rules","inputs":["shape"],"config":{"rules":[{"field":"amount","min":0}]}},
      {"id":"accepted","kind":"loader","plugin":"file","inputs":["gate.pass"],"config":{"path":"accepted.ndjson","append":true}},
      {"id":"rejects","kind":"loader","plugin":"file","inputs":["gate.fail"],"config":{"path":"rejects.ndjson","append":true}},
      {"id":"dead","kind":"loader","plugin":"file","config":{"path":"dead.ndjson","append":true}}]})");
    const std::set<std::string> stages{"orders_in", "shape", "gate", "accepted", "rejects", "dead"};
    const std::set<std::string> edges{"orders_in||shape", "shape||gate", "gate|pass|accepted", "gate|fail|rejects",
                                      "shape|dead letters|dead"};
    ChildProcess p({sluice_binary(), "run", m, "--admin", "127.0.0.1:0", "--admin-linger", "120"});
    const int admin = port_after(p, "admin endpoint listening on http://127.0.0.1:");
    ASSERT_GT(admin, 0) << p.err_so_far();
    int posted = 0;
    auto post = [&](int n) {
        HttpReply r = http_request(ingest, "POST", "/ingest", orders(posted + 1, n));
        ASSERT_EQ(r.status, 202) << r.body;
        posted += n;
    };
    ASSERT_TRUE(eventually([&] { return http_request(ingest, "POST", "/ingest", "").status > 0; }, 30s));
    post(200);

    HeadlessChromium browser(1280, 800);
    browser.navigate("http://127.0.0.1:" + std::to_string(admin) + "/");
    ASSERT_TRUE(browser.wait_until("document.querySelectorAll('.node').length === 6", 15s)) << bj::serialize(read_page(browser));
    ASSERT_TRUE(page_matches_status(browser, admin));
    bj::object page = read_page(browser);
    EXPECT_EQ(page.at("phase").as_string(), "running");
    expect_graph(page, stages, edges);
    EXPECT_EQ(page.at("stages").at("gate").at("kind").as_string(), "validator");
    EXPECT_NE(std::string(page.at("stages").at("gate").at("queue").as_string()).find('/'), std::string::npos);
    // The reasons are the run's: the gate's minimum, the failed cast.
    const std::string reasons = bj::serialize(page.at("reasons"));
    EXPECT_NE(reasons.find("amount: below the minimum 0"), std::string::npos) << reasons;
    EXPECT_NE(reasons.find("failed: cast amount"), std::string::npos) << reasons;

    // Records keep coming: the numbers move, the rate shows, the chart grows.
    const uint64_t before = count(page.at("stages").at("orders_in").at("counts").at("out"));
    std::atomic<bool> sending{true};
    std::thread sender([&] {
        while (sending) {
            post(100);
            std::this_thread::sleep_for(150ms);
        }
    });
    const bool moved = browser.wait_until(
        "(() => { const n = document.querySelector('.node[data-stage=\"orders_in\"]');"
        " return Number(n.querySelector('dd[data-count=\"out\"]').textContent.replace(/,/g, '')) > " +
            std::to_string(before) + " && n.querySelector('[data-field=\"rate\"]').textContent !== '0/s'; })()",
        20s);
    std::this_thread::sleep_for(3s); // a few seconds of the rate chart
    sending = false;
    sender.join();
    ASSERT_TRUE(moved) << bj::serialize(read_page(browser));
    ASSERT_TRUE(page_matches_status(browser, admin));
    page = read_page(browser);
    EXPECT_GE(page.at("stages").at("orders_in").at("spark").to_number<int64_t>(), 3) << "the rate chart has no history";
    EXPECT_EQ(count(read_status(admin).at("records").at("extracted")), uint64_t(posted));
    expect_screenshot(browser, "status_page_live_1280x800.png", 1280, 800);

    // At a phone's width: one column, every stage and link still there.
    ASSERT_NO_FATAL_FAILURE(expect_right_at_phone_width(browser, admin, stages, edges, "status_page_live_390.png"));
    browser.resize(1280, 800, false);

    // The run ends (a graceful stop): the page shows the final report, and
    // keeps it once sluice has exited.
    p.signal(SIGTERM);
    ASSERT_TRUE(p.wait_for_err("its final report stays on")) << p.err_so_far();
    ASSERT_TRUE(browser.wait_until("document.getElementById('phase').dataset.phase === 'stopped'", 15s));
    ASSERT_TRUE(page_matches_status(browser, admin));
    page = read_page(browser);
    EXPECT_NE(std::string(page.at("banner").as_string()).find("final report"), std::string::npos) << page.at("banner");
    expect_graph(page, stages, edges);
    const bj::object final_status = read_status(admin);
    EXPECT_EQ(count(final_status.at("records").at("extracted")), uint64_t(posted));
    expect_only_own_requests_and_no_errors(browser, admin);
    p.signal(SIGTERM); // leaves the linger
    EXPECT_EQ(p.wait(60s).exit_code, 0) << p.err_so_far();
    EXPECT_TRUE(browser.wait_until("document.getElementById('banner').textContent.includes('sluice has exited')", 15s));
    EXPECT_EQ(counts_on_page(read_page(browser)), counts_in_status(final_status));
}

TEST(StatusPage, ShowsAFinishedRunWithItsGatesAndDeadLetters) {
    SKIP_WITHOUT_CHROMIUM();
    // The two-source example (pipelines/orders_graph.json), reading its
    // sample data and writing here.
    TempDir dir;
    std::string manifest = read_file(std::string(SLUICE_SOURCE_DIR) + "/pipelines/orders_graph.json");
    for (const std::string from : {"data/", "../out/orders_graph/"}) {
        const std::string to = from == "data/" ? std::string(SLUICE_SOURCE_DIR) + "/pipelines/data/" : dir.path() + "/";
        for (size_t at = 0; (at = manifest.find("\"" + from, at)) != std::string::npos; at += to.size())
            manifest.replace(at + 1, from.size(), to);
    }
    const std::string m = dir.write("orders_graph.json", manifest);
    const std::set<std::string> stages{"shop_csv", "web_ndjson", "clean",   "complete",    "plausible",
                                       "orders",   "orders_csv", "rejects", "dead_letters"};
    const std::set<std::string> edges{
        "shop_csv||clean",        "web_ndjson||clean",          "clean||complete",
        "complete|pass|plausible", "plausible|pass|orders",     "plausible|pass|orders_csv",
        "complete|fail|rejects",  "plausible|fail|rejects",     "shop_csv|dead letters|dead_letters",
        "web_ndjson|dead letters|dead_letters", "clean|dead letters|dead_letters"};
    ChildProcess p({sluice_binary(), "run", m, "--admin", "127.0.0.1:0", "--admin-linger", "120"});
    const int admin = port_after(p, "admin endpoint listening on http://127.0.0.1:");
    ASSERT_GT(admin, 0) << p.err_so_far();
    ASSERT_TRUE(p.wait_for_err("its final report stays on")) << p.err_so_far();

    HeadlessChromium browser(1280, 800);
    browser.navigate("http://127.0.0.1:" + std::to_string(admin) + "/");
    ASSERT_TRUE(browser.wait_until("document.getElementById('phase').dataset.phase === 'completed'", 15s));
    ASSERT_TRUE(page_matches_status(browser, admin));
    bj::object page = read_page(browser);
    expect_graph(page, stages, edges);
    EXPECT_FALSE(page.at("column").as_bool());
    EXPECT_NE(std::string(page.at("banner").as_string()).find("The run completed"), std::string::npos);
    // Every reason /status gives is on the page.
    const bj::object status = read_status(admin);
    std::set<std::string> shown;
    for (const auto &r : page.at("reasons").as_array()) shown.insert(std::string(r.as_string()));
    size_t reasons = 0;
    for (const auto &s : status.at("stages").as_array()) {
        for (const auto &r : s.at("reject_reasons").as_array()) {
            EXPECT_EQ(shown.count(std::string(r.at("reason").as_string())), 1u) << r;
            ++reasons;
        }
        for (const auto &r : s.at("error_reasons").as_array()) {
            EXPECT_EQ(shown.count("failed: " + std::string(r.at("reason").as_string())), 1u) << r;
            ++reasons;
        }
    }
    EXPECT_GE(reasons, 6u);
    EXPECT_FALSE(status.at("quality").as_object().contains("enrichment_rate")) << "no stage enriches here";
    EXPECT_EQ(shown.size(), reasons);
    expect_screenshot(browser, "status_page_finished_1280x800.png", 1280, 800);

    ASSERT_NO_FATAL_FAILURE(expect_right_at_phone_width(browser, admin, stages, edges, "status_page_finished_390.png"));
    expect_only_own_requests_and_no_errors(browser, admin);
    p.signal(SIGTERM);
    EXPECT_EQ(p.wait(60s).exit_code, 0) << p.err_so_far();
}
