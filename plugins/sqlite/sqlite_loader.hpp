// Loader "sqlite": inserts or upserts records as rows, one transaction per
// batch. The embedded default destination. See README.md.
#pragma once

#include "../common/path_checks.hpp"
#include "../common/resource_uri.hpp"
#include "sqlite_db.hpp"

#include "../common/sql_table.hpp"

#include <sluice/json.hpp>
#include <sluice/plugin.hpp>

#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace sluice::plugins::sqlite {

class SqliteLoader {
public:
    static constexpr sluice_kind kind = SLUICE_KIND_LOADER;
    static constexpr const char *name = "sqlite";
    static constexpr const char *version = "1.0.0";
    static constexpr const char *description =
        "Inserts or upserts JSON records into a SQLite table (WAL), one transaction per batch; refused rows go to "
        "the error path with SQLite's message.";
    // A transaction per call: batches waiting for it are joined into one.
    static constexpr uint64_t capabilities = SLUICE_CAP_SINGLE_WORKER | SLUICE_CAP_COMMIT_WINDOWS;
    static config::Spec config_spec() {
        using config::Field;
        return config::Spec{
            Field::string("path", "Database file, relative to the manifest (created, with missing directories, if missing)").required().not_empty(),
        }
            .include(sql::TableTarget::spec("", "an SQLite column definition: INTEGER, TEXT, JSON, "
                                                "REAL CHECK (amount > 0) ..."))
            .add(Field::choice("durability", {"normal", "full"},
                               "normal (synchronous=NORMAL in WAL mode): a committed batch survives sluice or the "
                               "machine's programs crashing, while a power cut or an OS crash can undo the last "
                               "commits, which sluice may have acknowledged already; full (synchronous=FULL): each "
                               "commit is on disk before it is acknowledged, at the cost of a sync per commit")
                     .default_to("normal"))
            .add(Field::choice("synchronous", {"normal", "full"}, "Older name of durability (still read)"));
    }

    explicit SqliteLoader(const Context &ctx);
    void start();
    void process(Input in, Emitter &out) { write(in, out, nullptr); }
    // sluice.exactly_once/1: the host's marker is kept in table
    // sluice_markers (one row per table and stage), written in the batch's
    // own transaction.
    std::string recover();
    // sluice.resources/1: its table.
    std::string resources() const { return Resources().writes("table", sqlite_uri(path_, target_.table)).json(); }
    // sluice.preflight/1: the database can be created or written there.
    std::vector<std::string> preflight() const {
        if (std::string p = writable_target(path_, true); !p.empty()) return {"path: " + p};
        return {};
    }
    void process(Input in, Emitter &out, std::string_view marker) { write(in, out, &marker); }
    void flush(Emitter &out);
    void stop();
    // sluice.delivery/1: a batch is committed when process returns.
    bool durable_on_process() const { return true; }

private:
    // Ends the open transaction, if SQLite has not ended it already.
    void roll_back();
    // One batch in one transaction, with the marker when there is one.
    void write(Input in, Emitter &out, const std::string_view *marker);
    void create_marker_table();

    Host host_;
    std::string marker_key_; // "<table>/<stage id>" once recovered
    std::string path_;
    sql::TableTarget target_;
    bool full_sync_ = true;
    std::unique_ptr<Database> db_;
    std::optional<Statement> insert_;
    std::optional<Statement> set_marker_; // with exactly-once delivery
    json::RecordParser parser_;
    json::RecordWriter writer_;
    int64_t written_ = 0, refused_ = 0, extra_fields_ = 0;
};

} // namespace sluice::plugins::sqlite
