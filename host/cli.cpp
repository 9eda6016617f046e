#include "cli.hpp"

#include "admin_server.hpp"
#include "cli_commands.hpp"
#include "config_table.hpp"
#include "document.hpp"
#include "dry_run.hpp"
#include "progress_line.hpp"
#include "reload_client.hpp"
#include "secret_redactor.hpp"
#include "tap_client.hpp"

#include "kinds.hpp"
#include "logging.hpp"
#include "manifest.hpp"
#include "pipeline.hpp"
#include "plugin_loader.hpp"
#include "report.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <csignal>
#include <map>
#include <unistd.h>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#ifndef SLUICE_VERSION
#define SLUICE_VERSION "0.0.0"
#endif

namespace sluice {

namespace bj = boost::json;

namespace {

constexpr int kExitOk = 0;
constexpr int kExitFailed = 1;
constexpr int kExitUsage = 2;

const char *kMainHelp = R"(sluice - run data pipelines built from stage plugins

usage: sluice <command> [options]

commands:
  run MANIFEST        run a pipeline to the end of its input (or until SIGINT/SIGTERM)
  validate MANIFEST   check a manifest, its plugins and their configs; run nothing
  graph MANIFEST      print the pipeline graph in Graphviz DOT (sluice graph m.json | dot -Tsvg)
  plugins             list the plugins found, with their config
  tap ADDR STAGE[.OUTPUT]  print records a stage of a running pipeline sends (its --admin endpoint)
  reload ADDR         make a running pipeline read its manifest again (or send it SIGHUP)
  test MANIFEST TESTS run a manifest's pipeline tests (records in, expectations out)
  convert IN [OUT]    rewrite a manifest or test file from JSON to YAML or back
  pin MANIFEST        write each stage's plugin library SHA-256 into the manifest
  help [COMMAND]      show help for a command

options:
  -h, --help          show help (also after a command: sluice run --help)
  -V, --version       print the version and the plugin ABI version

exit codes: 0 success; 1 the run failed; 2 bad usage, manifest or plugin;
3 the run finished but crossed a threshold (max_error_rate, min_quality,
--fail-on, or every record failed / none loaded); 128+N killed by signal N
)";

const char *kRunHelp = R"(usage: sluice run MANIFEST [--report FILE] [--fail-on CONDITION]... [--admin ADDR:PORT]
                  [--admin-linger S] [--dry-run [--limit N]] [--no-check] [--quiet] [--log-level LEVEL]
                  [--log-format text|json]

Runs the pipeline described by MANIFEST until its extractors reach the end of
their input. SIGINT or SIGTERM stops extraction, drains what is in flight,
flushes the loaders and exits 0; a second signal exits at once (128+signal).
SIGHUP (or 'sluice reload', or POST /reload on the admin endpoint) reads
MANIFEST again: a manifest with any problem is refused and the run goes on
unchanged; otherwise stages whose config or plugin file changed are replaced
between two batches while the rest keep running, and stages added or removed
are wired in or out while extraction pauses (see README, "Live reload").
A per-stage table is printed on stderr at the end.

options:
  --report FILE       also write the run report as JSON to FILE (its directory
                      must exist and be writable: checked before the run)
  --fail-on COND      exit 3 when the finished run crossed COND: errors (any
                      record error), rejects (any rejected record),
                      error_rate>X or quality<X (X from 0 to 1); adds to the
                      manifest's max_error_rate and min_quality. A run in which
                      every record failed, or none was loaded, exits 3 anyway
                      unless the manifest sets fail_if_nothing_loaded: false
  --admin ADDR:PORT   serve /health, /ready, /status, /metrics (Prometheus) and
                      /tap at ADDR:PORT while the run lasts (PORT 0: any free
                      one, logged); a bearer token is required when
                      $SLUICE_ADMIN_TOKEN is set (or the manifest's
                      admin.token_env names a variable); open
                      http://ADDR:PORT/ in a browser for the status page
  --admin-linger S    after the run, keep the admin endpoint up for S seconds
                      (or until SIGINT/SIGTERM) so that the status page and
                      /status show the final report
  --log-level LEVEL   trace, debug, info, warn (default), error, off
  --log-format FMT    text (default) or json: one object per line with time,
                      level, stage, plugin, record and message (and no table
                      at the end: --report has it)
  --dry-run           read the real input and run every stage, but let no
                      loader write: print what each would write on stdout, a
                      JSON line per record ({"loader", "id", "record"}), and
                      count it in the table; no delivery state is read or
                      saved (redirect stdout to /dev/null to only count)
  --limit N           with --dry-run: each extractor reads at most N records
  --no-check          skip the checks each stage makes before the run reads
                      anything (see 'sluice validate --check')
  --allow-untrusted-plugins  load plugin files that another user, or a
                      group, could have written (refused otherwise; see
                      README, "Security"), with a warning
  --quiet             no progress line (drawn only when stderr is a terminal;
                      otherwise a summary is logged at info level)
  --progress-interval S  seconds between those summaries (default 60)
  --plugin-path DIR   search DIR for plugins first (repeatable)
)";

const char *kTapHelp = R"(usage: sluice tap ADDR:PORT STAGE[.OUTPUT] [--limit N]

Prints, as NDJSON on stdout, the records that STAGE of a running pipeline
sends on OUTPUT (its first output when not named: a validator's is "pass"),
live, read from the pipeline's admin endpoint (sluice run --admin ADDR:PORT).
Sampled: records come as fast as this reader takes them, and what it cannot
keep up with is skipped, so tapping never slows the pipeline. Ends after N
records, when the run ends, or on Ctrl-C. The token, when the endpoint wants
one, is read from $SLUICE_ADMIN_TOKEN.

options:
  --limit N           stop after N records
)";

const char *kValidateHelp = R"(usage: sluice validate MANIFEST [--check] [--log-level LEVEL]

Checks the manifest (structure, types, wiring), finds and loads every plugin,
checks each stage's config against the plugin's schema and lets the plugin
check it too. Runs nothing, opens no file or connection. Prints the pipeline
outline on success; one line per problem otherwise (exit 2).

options:
  --check             also ask each stage to check what it needs, changing
                      nothing: input paths match files, output directories
                      exist and are writable, databases answer and allow the
                      access, endpoints are reachable (every run does this
                      before it reads anything)
  --log-level LEVEL   trace, debug, info, warn (default), error, off
  --plugin-path DIR   search DIR for plugins first (repeatable)
  --allow-untrusted-plugins  load plugin files others could have written
)";

const char *kPinHelp = R"(usage: sluice pin MANIFEST [--write] [--plugin-path DIR]... [--allow-untrusted-plugins]

Finds each stage's plugin library as a run would and writes its SHA-256 into
the stage ("sha256"): a pinned stage loads only a file with that hash, so a
reviewed manifest runs exactly the reviewed code (a changed or replaced
library is refused, naming both hashes). Stages built into sluice need none.
Prints the pinned manifest on stdout and each stage's file and hash on
stderr; run it again after reviewing a new version of a plugin.

options:
  --write             replace MANIFEST with the pinned one (YAML comments are
                      not kept)
  --plugin-path DIR   search DIR for plugins first (repeatable)
  --allow-untrusted-plugins  load plugin files others could have written
)";

const char *kGraphHelp = R"(usage: sluice graph MANIFEST

Checks the manifest like 'validate' and prints its graph in Graphviz DOT:
extractors, transformers, validators (diamonds) and loaders, with an edge per
input, labelled with the output it reads (e.g. pass, fail).

  sluice graph pipelines/orders_graph.json | dot -Tsvg > orders.svg
)";

const char *kPluginsHelp = R"(usage: sluice plugins [--path DIR]... [--json | --markdown]

Lists every stage plugin found in the search path: name, kind, version, ABI,
file, description and config. The search path is: --path directories,
$SLUICE_PLUGIN_PATH (colon-separated), then lib/sluice/plugins beside the
sluice executable. Files that are not usable plugins are listed with the
reason.

options:
  --path DIR          search DIR first (repeatable)
  --json              print JSON instead of text (with each library's sha256)
  --allow-untrusted-plugins  list plugin files others could have written
                      (otherwise listed as refused)
  --markdown          print each stage's config table as Markdown, between
                      the markers the plugin READMEs hold (tests/docs)
)";

const char *kConvertHelp = R"(usage: sluice convert IN [OUT] [--to json|yaml] [--force]

Rewrites a manifest (or a pipeline test file) from JSON to YAML or from YAML
to JSON: the same document, so either runs the same. The target syntax is
--to, else OUT's extension (.yaml/.yml or anything else), else the other one
than IN's. Without OUT the result goes to stdout. ${...} references are kept
as written (nothing is resolved, no secret is read); YAML comments, anchors
and merge keys do not survive into JSON (anchors and merges are expanded).

options:
  --to FMT            json or yaml
  --force             replace OUT when it exists
)";

const char *kTestHelp = R"(usage: sluice test MANIFEST TESTS... [--case TEXT] [--plugin-path DIR] [--log-level LEVEL]

Runs the cases of each TESTS file (JSON or YAML) against MANIFEST: each case
feeds records to named stages and checks what named stages send on. The real
plugins, configs, error policies and routing run; the manifest's sources and
destinations do not: every extractor emits only the records a case gives it
and every loader captures what it receives instead of writing. Prints a line
per case and, under a failed one, what differed. Exit 0 when every case
passed, 1 when one failed, 2 when a file cannot be used.

A test file:
  env: {NAME: value}                   # optional, for every case
  tests:
    - name: a complete order passes
      env: {NAME: value}               # optional, for this case
      inputs:
        - stage: clean                 # any stage (an extractor: as its output)
          records: [{order_id: "1", amount: "9.5"}]   # or texts: ["a line"]
          attributes: {source: test}   # optional, on each record
      expect:
        - stage: quality.pass          # STAGE or STAGE.OUTPUT (a loader: what it got)
          count: 1                     # how many records
          records: [{order_id: 1, amount: 9.5}]   # exactly these (unordered: true)
          contains: [{order_id: 1}]    # some record has these fields
          each:                        # every record meets each condition
            - {field: amount, type: number, min: 0}
            - {attribute: source, equals: test}
        - stage: quality
          rejected: ["email: is missing"]   # why it rejected records (and errors:)

conditions: field (a.b or /a/b) or attribute, with equals, exists, type,
matches (regex), min, max, one_of, contains (substring or array element).

options:
  --case TEXT         run only the cases whose name contains TEXT
  --plugin-path DIR   search DIR for plugins first (repeatable)
  --log-level LEVEL   the pipeline's log lines (default error: rejected and
                      failed records are what cases check, not noise)
)";

const char *kReloadHelp = R"(usage: sluice reload ADDR:PORT

Asks the pipeline running with '--admin ADDR:PORT' to read its manifest again
and apply it (as SIGHUP does): every change is checked first; a manifest with
a problem, or a change only a restart can make (an extractor added or
removed, or changed when it cannot go on from its read position, a stage's
threads or on_error), is refused and the pipeline runs as it was. Stages whose config or plugin file changed are replaced between
two batches: each record is handled by the old or the new version, never
both, never neither. Stages added or removed and inputs rewired take effect
while extraction pauses and what is in flight drains. Prints what changed, or why it was refused. The token, when the
endpoint wants one, is read from $SLUICE_ADMIN_TOKEN.

exit codes: 0 applied (or nothing changed), 1 refused, 2 the endpoint could
not be reached
)";

struct Args {
    std::string command;
    std::vector<std::string> positional;
    std::optional<std::string> report;
    std::string log_level = "warn";
    std::vector<std::string> plugin_dirs;
    bool json = false;
    bool markdown = false;
    std::vector<std::string> fail_on; // run --fail-on conditions
    std::optional<std::string> admin; // run --admin ADDR:PORT
    std::string log_format = "text";
    bool quiet = false;
    bool check = false;    // validate --check
    bool no_check = false; // run --no-check
    uint32_t progress_interval_s = 60;
    uint32_t admin_linger_s = 0; // run --admin-linger
    uint64_t limit = 0; // tap --limit, run --limit
    bool dry_run = false;
    std::string to;     // convert --to
    bool force = false; // convert --force
    bool allow_untrusted = false; // --allow-untrusted-plugins
    bool write = false;           // pin --write
    std::string only_case; // test --case
    bool log_level_given = false;
    bool help = false;
};

void usage_error(const std::string &message, const char *help_hint = nullptr) {
    std::cerr << "sluice: " << message << "\n";
    std::cerr << "try 'sluice " << (help_hint ? std::string(help_hint) + " " : "") << "--help'\n";
}

// Parses `argv` after the command name. Returns false (after printing) on error.
bool parse_options(const std::string &command, int argc, char **argv, int first, Args &args) {
    for (int i = first; i < argc; ++i) {
        std::string a = argv[i];
        auto value = [&](const char *name) -> std::optional<std::string> {
            if (i + 1 >= argc) {
                usage_error(std::string(name) + " needs a value", command.c_str());
                return std::nullopt;
            }
            return std::string(argv[++i]);
        };
        if (a == "-h" || a == "--help") {
            args.help = true;
        } else if (a == "--report" && command == "run") {
            auto v = value("--report");
            if (!v) return false;
            args.report = *v;
        } else if (a == "--log-level" && command != "help") {
            auto v = value("--log-level");
            if (!v) return false;
            if (auto names = log_level_names_if_invalid(*v)) {
                usage_error("--log-level: unknown level '" + *v + "' (expected " + *names + ")", command.c_str());
                return false;
            }
            args.log_level = *v;
            args.log_level_given = true;
        } else if (a == "--case" && command == "test") {
            auto v = value("--case");
            if (!v) return false;
            args.only_case = *v;
        } else if ((a == "--plugin-path" &&
                    (command == "run" || command == "validate" || command == "graph" || command == "test")) ||
                   (a == "--plugin-path" && command == "pin") || (a == "--path" && command == "plugins")) {
            auto v = value(a.c_str());
            if (!v) return false;
            args.plugin_dirs.push_back(*v);
        } else if (a == "--admin" && command == "run") {
            auto v = value("--admin");
            if (!v) return false;
            args.admin = *v;
        } else if (a == "--log-format" && command != "help") {
            auto v = value("--log-format");
            if (!v) return false;
            if (*v != "text" && *v != "json") {
                usage_error("--log-format: unknown format '" + *v + "' (expected text or json)", command.c_str());
                return false;
            }
            args.log_format = *v;
        } else if (a == "--check" && command == "validate") {
            args.check = true;
        } else if (a == "--progress-interval" && command == "run") {
            auto v = value("--progress-interval");
            if (!v) return false;
            auto r = std::from_chars(v->data(), v->data() + v->size(), args.progress_interval_s);
            if (v->empty() || r.ec != std::errc() || r.ptr != v->data() + v->size() || args.progress_interval_s == 0) {
                usage_error("--progress-interval: expected a number of seconds, 1 or more, got '" + *v + "'", "run");
                return false;
            }
        } else if (a == "--admin-linger" && command == "run") {
            auto v = value("--admin-linger");
            if (!v) return false;
            auto r = std::from_chars(v->data(), v->data() + v->size(), args.admin_linger_s);
            if (v->empty() || r.ec != std::errc() || r.ptr != v->data() + v->size()) {
                usage_error("--admin-linger: expected a number of seconds, got '" + *v + "'", "run");
                return false;
            }
        } else if (a == "--no-check" && command == "run") {
            args.no_check = true;
        } else if (a == "--quiet" && command == "run") {
            args.quiet = true;
        } else if (a == "--limit" && (command == "tap" || command == "run")) {
            auto v = value("--limit");
            if (!v) return false;
            auto r = std::from_chars(v->data(), v->data() + v->size(), args.limit);
            if (v->empty() || r.ec != std::errc() || r.ptr != v->data() + v->size() || args.limit == 0) {
                usage_error("--limit: expected a number of records, 1 or more, got '" + *v + "'", command.c_str());
                return false;
            }
        } else if (a == "--dry-run" && command == "run") {
            args.dry_run = true;
        } else if (a == "--fail-on" && command == "run") {
            auto v = value("--fail-on");
            if (!v) return false;
            args.fail_on.push_back(*v);
        } else if (a == "--to" && command == "convert") {
            auto v = value("--to");
            if (!v) return false;
            if (*v != "json" && *v != "yaml") {
                usage_error("--to: unknown format '" + *v + "' (expected json or yaml)", "convert");
                return false;
            }
            args.to = *v;
        } else if (a == "--allow-untrusted-plugins" &&
                   (command == "run" || command == "validate" || command == "graph" || command == "plugins" ||
                    command == "pin")) {
            args.allow_untrusted = true;
        } else if (a == "--write" && command == "pin") {
            args.write = true;
        } else if (a == "--force" && command == "convert") {
            args.force = true;
        } else if (a == "--json" && command == "plugins") {
            args.json = true;
        } else if (a == "--markdown" && command == "plugins") {
            args.markdown = true;
        } else if (!a.empty() && a[0] == '-') {
            usage_error("unknown option '" + a + "' for '" + command + "'", command.c_str());
            return false;
        } else {
            args.positional.push_back(a);
        }
    }
    return true;
}

std::optional<Manifest> load_or_print(const std::string &path, const Args &args) {
    try {
        Manifest m = load_manifest(path);
        m.plugin_dirs.insert(m.plugin_dirs.begin(), args.plugin_dirs.begin(), args.plugin_dirs.end());
        m.allow_untrusted_plugins = m.allow_untrusted_plugins || args.allow_untrusted;
        return m;
    } catch (const ManifestError &e) {
        for (const auto &msg : e.messages()) std::cerr << redacted(msg) << "\n";
        return std::nullopt;
    }
}

int cmd_validate(const Args &args, bool as_dot) {
    auto manifest = load_or_print(args.positional[0], args);
    if (!manifest) return kExitUsage;
    try {
        Pipeline pipeline(std::move(*manifest));
        if (as_dot) {
            std::cout << redacted(pipeline.dot());
            return kExitOk;
        }
        if (args.check) {
            std::vector<std::string> problems = pipeline.preflight();
            for (const auto &p : problems) std::cerr << redacted(p) << "\n";
            if (!problems.empty()) return kExitUsage;
        }
        std::cout << redacted(pipeline.describe());
        std::cout << "ok: " << pipeline.manifest().path << " is valid" << (args.check ? " and ready to run" : "")
                  << "\n";
        return kExitOk;
    } catch (const SetupError &e) {
        for (const auto &msg : e.messages()) std::cerr << redacted(msg) << "\n";
        return kExitUsage;
    }
}

bool is_loopback(const std::string &address) {
    return address == "127.0.0.1" || address == "::1" || address == "localhost" || address.rfind("127.", 0) == 0;
}

// The admin endpoint: --admin over the manifest's "admin"; port -1 when
// neither asks for one; nullopt (after a one-line error) when misconfigured.
std::optional<AdminSettings> admin_settings(const Args &args, const Manifest &manifest) {
    AdminSettings s;
    s.port = -1;
    std::string token_env;
    if (manifest.admin) {
        s.address = manifest.admin->address;
        s.port = manifest.admin->port;
        token_env = manifest.admin->token_env;
    }
    if (args.admin) {
        std::string problem;
        auto parsed = parse_admin_address(*args.admin, problem);
        if (!parsed) {
            usage_error("--admin: " + problem, "run");
            return std::nullopt;
        }
        s.address = parsed->address;
        s.port = parsed->port;
    }
    if (!token_env.empty()) {
        const char *t = std::getenv(token_env.c_str());
        if (!t || !*t) {
            std::cerr << "sluice: " << manifest.path << ": /admin/token_env: environment variable " << token_env
                      << " is not set\n";
            return std::nullopt;
        }
        s.token = t;
    } else if (const char *t = std::getenv("SLUICE_ADMIN_TOKEN"); t && *t) {
        s.token = t;
    }
    return s;
}

// Waits `limit`, or less when SIGINT or SIGTERM comes (they are blocked in
// every thread: see block_stop_signals).
void linger_for_signal(std::chrono::seconds limit) {
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    const auto until = std::chrono::steady_clock::now() + limit;
    for (auto now = std::chrono::steady_clock::now(); now < until; now = std::chrono::steady_clock::now()) {
        const auto left = std::chrono::duration_cast<std::chrono::nanoseconds>(until - now);
        timespec timeout{static_cast<time_t>(left.count() / 1000000000), static_cast<long>(left.count() % 1000000000)};
        if (sigtimedwait(&stop, nullptr, &timeout) > 0) return;
    }
}

// The report is written at the end: a path that cannot be written must fail
// before anything is read, not after all the data has gone through.
std::string report_path_problem(const std::string &path) {
    std::string probe = path + ".tmp";
    std::ofstream out(probe, std::ios::binary | std::ios::app);
    if (!out) return "--report " + path + ": cannot write there (" + std::strerror(errno) + ")";
    out.close();
    std::remove(probe.c_str());
    return {};
}

int cmd_run(const Args &args) {
    if (args.limit && !args.dry_run) {
        usage_error("--limit works with --dry-run only (a real run reads its input to the end)", "run");
        return kExitUsage;
    }
    auto manifest = load_or_print(args.positional[0], args);
    if (!manifest) return kExitUsage;
    const std::string dry_run_sink = "dry-run";
    if (args.dry_run) {
        register_record_sink(dry_run_sink, std::make_shared<DryRunPrinter>(std::cout));
        prepare_dry_run(*manifest, dry_run_sink, args.limit);
    }
    for (const std::string &condition : args.fail_on) {
        if (std::string problem = manifest->thresholds.add_condition(condition); !problem.empty()) {
            usage_error(problem, "run");
            return kExitUsage;
        }
    }
    if (args.report) {
        if (std::string problem = report_path_problem(*args.report); !problem.empty()) {
            std::cerr << "sluice: " << problem << "\n";
            return kExitUsage;
        }
    }
    std::unique_ptr<Pipeline> pipeline;
    try {
        pipeline = std::make_unique<Pipeline>(std::move(*manifest));
    } catch (const SetupError &e) {
        for (const auto &msg : e.messages()) std::cerr << redacted(msg) << "\n";
        return kExitUsage;
    }
    // What each stage needs, checked before anything is read.
    if (std::vector<std::string> problems = args.no_check ? std::vector<std::string>() : pipeline->preflight();
        !problems.empty()) {
        for (const auto &p : problems) std::cerr << redacted(p) << "\n";
        return kExitUsage;
    }
    std::map<std::string, std::string> stage_plugins;
    for (const auto &s : pipeline->manifest().stages) stage_plugins[s.id] = s.plugin;
    set_log_stage_plugins(std::move(stage_plugins));

    // A live reload reads the manifest again (not in a dry run: its loaders
    // are not the manifest's).
    std::function<ReloadOutcome()> reload;
    if (!args.dry_run) {
        reload = [p = pipeline.get(), path = args.positional[0], dirs = args.plugin_dirs,
                  allow = args.allow_untrusted]() {
            Manifest next;
            try {
                next = load_manifest(path);
            } catch (const ManifestError &e) {
                ReloadOutcome refused;
                refused.problems = e.messages();
                for (const auto &m : refused.problems) spdlog::error("reload refused: {}", redacted(m));
                spdlog::warn("reload refused: the pipeline keeps running as it was");
                return refused;
            }
            next.plugin_dirs.insert(next.plugin_dirs.begin(), dirs.begin(), dirs.end());
            next.allow_untrusted_plugins = next.allow_untrusted_plugins || allow;
            return p->reload(std::move(next));
        };
    }
    std::unique_ptr<AdminServer> admin;
    std::string admin_url;
    if (auto settings = admin_settings(args, pipeline->manifest()); !settings) {
        return kExitUsage;
    } else if (settings->port < 0 && args.admin_linger_s > 0) {
        usage_error("--admin-linger needs an admin endpoint (--admin ADDR:PORT or the manifest's \"admin\")", "run");
        return kExitUsage;
    } else if (settings->port >= 0) {
        settings->reload = reload;
        try {
            admin = std::make_unique<AdminServer>(*settings, *pipeline);
        } catch (const std::exception &e) {
            std::cerr << "sluice: " << e.what() << "\n";
            return kExitUsage;
        }
        const std::string url = admin_url = "http://" + settings->address + ":" + std::to_string(admin->port());
        // A port the system chose is shown whatever the log level: nobody
        // could reach the endpoint otherwise.
        if (settings->port == 0) spdlog::warn("admin endpoint listening on {} (port chosen by the system)", url);
        else spdlog::info("admin endpoint listening on {}", url);
        if (settings->token.empty() && !is_loopback(settings->address))
            spdlog::warn("the admin endpoint on {} has no token: anyone who can reach it can read records "
                         "(/tap); set $SLUICE_ADMIN_TOKEN or admin.token_env",
                         url);
    }
    std::unique_ptr<ProgressLine> progress;
    if (!args.quiet)
        progress = std::make_unique<ProgressLine>(*pipeline,
                                                  isatty(STDERR_FILENO) ? ProgressLine::Mode::terminal
                                                                        : ProgressLine::Mode::log_summary,
                                                  std::chrono::seconds(args.progress_interval_s));
    RunOptions options;
    options.handle_signals = true;
    if (reload) options.on_sighup = [reload] { reload(); };
    RunResult result = pipeline->run(options);
    progress.reset();
    // JSON logs are for machines: no table among them (--report has it all).
    if (args.log_format != "json") std::cerr << redacted(format_report_table(result.report));
    if (args.dry_run)
        std::cerr << "dry run: no loader wrote anything; the table counts what each would have written"
                  << (args.limit ? " (at most " + std::to_string(args.limit) + " records read per extractor)" : "")
                  << "\n";
    if (args.report) {
        if (std::string problem =
                write_text_file_atomically(*args.report, redacted(bj::serialize(result.report)) + "\n");
            !problem.empty()) {
            std::cerr << "sluice: the report: " << problem << "\n";
            return result.exit_code ? result.exit_code : kExitFailed;
        }
    }
    if (admin && args.admin_linger_s > 0) {
        std::cerr << "sluice: the run is over; its final report stays on " << admin_url << "/ for "
                  << args.admin_linger_s << " s (SIGINT or SIGTERM to leave now)\n";
        linger_for_signal(std::chrono::seconds(args.admin_linger_s));
    }
    if (admin) admin->stop();
    if (result.calls_still_running) {
        // A stuck plugin thread may still touch the pipeline: do not tear it
        // down under it.
        std::cout.flush();
        std::cerr.flush();
        std::fflush(nullptr);
        std::_Exit(result.exit_code);
    }
    return result.exit_code;
}

int cmd_plugins(const Args &args) {
    std::vector<std::string> dirs = plugin_search_dirs(args.plugin_dirs);
    PluginRegistry registry(dirs, args.allow_untrusted);
    auto listing = registry.list_all();
    std::sort(listing.stages.begin(), listing.stages.end(), [](const LoadedStage &a, const LoadedStage &b) {
        if (a.desc->kind != b.desc->kind) return a.desc->kind < b.desc->kind;
        return std::string_view(a.desc->name) < std::string_view(b.desc->name);
    });
    if (args.json) {
        bj::array arr;
        for (const auto &s : listing.stages) {
            bj::object o;
            o["name"] = s.desc->name;
            o["kind"] = std::string(kind_name(s.desc->kind));
            o["version"] = s.desc->version ? s.desc->version : "";
            o["abi"] = fmt::format("{}.{}", s.library->abi_major(), s.library->abi_minor());
            o["library"] = s.library->path();
            o["sha256"] = s.library->sha256(); // "" for a stage built into sluice
            o["description"] = s.desc->description ? s.desc->description : "";
            o["capabilities"] = s.desc->capabilities;
            bj::array outputs;
            for (const auto &n : s.output_names) outputs.push_back(bj::string(n));
            o["outputs"] = std::move(outputs);
            o["config_schema"] = s.schema;
            arr.push_back(std::move(o));
        }
        bj::array problems;
        for (const auto &p : listing.problems) problems.push_back(bj::string(p));
        std::cout << bj::serialize(bj::object{{"plugins", arr}, {"problems", problems}}) << "\n";
        return kExitOk;
    }
    if (args.markdown) {
        // Blocks that tests/docs/plugin_readmes.sh puts into each plugin's
        // README between the same two markers.
        for (const auto &s : listing.stages) {
            std::cout << "<!-- config: " << kind_name(s.desc->kind) << " " << s.desc->name << " -->\n";
            std::vector<ConfigRow> rows = config_rows(s.schema);
            std::cout << (rows.empty() ? std::string("This stage takes no config.\n") : config_rows_markdown(rows));
            std::cout << "<!-- end config -->\n";
        }
        return kExitOk;
    }
    if (listing.stages.empty()) {
        std::cout << "no plugins found in:";
        for (const auto &d : dirs) std::cout << " " << d;
        std::cout << "\n";
    }
    for (const auto &s : listing.stages) {
        std::cout << fmt::format("{} ({}) {}  ABI {}.{}  {}\n", s.desc->name, kind_name(s.desc->kind),
                                 s.desc->version ? s.desc->version : "?", s.library->abi_major(),
                                 s.library->abi_minor(), s.library->path());
        if (s.desc->description) std::cout << "  " << s.desc->description << "\n";
        if (s.desc->output_count) {
            std::cout << "  outputs:";
            for (const auto &n : s.output_names) std::cout << " " << n;
            std::cout << "\n";
        }
        if (s.desc->capabilities & SLUICE_CAP_SINGLE_WORKER) std::cout << "  runs on a single worker\n";
        std::vector<ConfigRow> rows = config_rows(s.schema);
        if (rows.empty()) {
            std::cout << "  config: none\n\n";
            continue;
        }
        std::cout << "  config:\n" << config_rows_text(rows, "    ") << "\n";
    }
    for (const auto &p : listing.problems) std::cout << "not a usable plugin: " << p << "\n";
    return kExitOk;
}

} // namespace

int cli_main(int argc, char **argv) {
    if (argc < 2) {
        std::cerr << kMainHelp;
        return kExitUsage;
    }
    std::string command = argv[1];
    if (command == "-h" || command == "--help") {
        std::cout << kMainHelp;
        return kExitOk;
    }
    if (command == "-V" || command == "--version") {
        std::cout << "sluice " << SLUICE_VERSION << " (plugin ABI " << SLUICE_ABI_MAJOR << "." << SLUICE_ABI_MINOR
                  << ")\n";
        return kExitOk;
    }
    if (command == "help") {
        std::string topic = argc > 2 ? argv[2] : "";
        if (topic == "run") std::cout << kRunHelp;
        else if (topic == "validate") std::cout << kValidateHelp;
        else if (topic == "plugins") std::cout << kPluginsHelp;
        else if (topic == "graph") std::cout << kGraphHelp;
        else if (topic == "tap") std::cout << kTapHelp;
        else if (topic == "convert") std::cout << kConvertHelp;
        else if (topic == "pin") std::cout << kPinHelp;
        else if (topic == "reload") std::cout << kReloadHelp;
        else if (topic == "test") std::cout << kTestHelp;
        else if (topic.empty() || topic == "help") std::cout << kMainHelp;
        else {
            usage_error("no help for unknown command '" + topic + "'");
            return kExitUsage;
        }
        return kExitOk;
    }
    const char *help = command == "run" ? kRunHelp : command == "validate" ? kValidateHelp
                     : command == "graph" ? kGraphHelp : command == "plugins" ? kPluginsHelp
                     : command == "tap" ? kTapHelp : command == "convert" ? kConvertHelp
                     : command == "test" ? kTestHelp : command == "reload" ? kReloadHelp
                     : command == "pin" ? kPinHelp : nullptr;
    if (!help) {
        usage_error("unknown command '" + command + "'");
        return kExitUsage;
    }
    Args args;
    args.command = command;
    if (!parse_options(command, argc, argv, 2, args)) return kExitUsage;
    if (args.help) {
        std::cout << help;
        return kExitOk;
    }
    setup_logging(command == "test" && !args.log_level_given ? "error" : args.log_level, args.log_format);
    if (command == "tap") {
        if (args.positional.size() != 2) {
            usage_error("'tap' needs ADDR:PORT and STAGE[.OUTPUT]", "tap");
            return kExitUsage;
        }
        return run_tap(args.positional[0], args.positional[1], args.limit, std::cout, std::cerr);
    }
    if (command == "reload") {
        if (args.positional.size() != 1) {
            usage_error("'reload' needs the ADDR:PORT of a running pipeline's admin endpoint", "reload");
            return kExitUsage;
        }
        return run_reload(args.positional[0], std::cout, std::cerr);
    }
    if (command == "test") {
        if (args.positional.size() < 2) {
            usage_error("'test' needs a MANIFEST and at least one TESTS file", "test");
            return kExitUsage;
        }
        return cmd_test(args.positional[0], {args.positional.begin() + 1, args.positional.end()}, args.plugin_dirs,
                        args.only_case);
    }
    if (command == "convert") {
        if (args.positional.empty() || args.positional.size() > 2) {
            usage_error("'convert' needs IN and at most one OUT", "convert");
            return kExitUsage;
        }
        return cmd_convert(args.positional[0], args.positional.size() > 1 ? args.positional[1] : "", args.to,
                           args.force);
    }
    if (command == "plugins") {
        if (!args.positional.empty()) {
            usage_error("'plugins' takes no argument, got '" + args.positional[0] + "'", "plugins");
            return kExitUsage;
        }
        return cmd_plugins(args);
    }
    if (args.positional.size() != 1) {
        usage_error(args.positional.empty() ? "'" + command + "' needs a MANIFEST"
                                            : "'" + command + "' takes one MANIFEST, got " +
                                                  std::to_string(args.positional.size()) + " arguments",
                    command.c_str());
        return kExitUsage;
    }
    if (command == "run") return cmd_run(args);
    if (command == "pin") return cmd_pin(args.positional[0], args.plugin_dirs, args.allow_untrusted, args.write);
    return cmd_validate(args, command == "graph");
}

} // namespace sluice
