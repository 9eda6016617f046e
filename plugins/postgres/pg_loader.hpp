// Loader "postgres": COPY in batches, one transaction per batch, insert or
// upsert; rows the server refuses go to the error path. Two connections take
// turns so that one window's COMMIT runs while the next is written
// (sluice.settle/1). See README.md.
#pragma once

#include "copy_binary.hpp"
#include "pg_connection.hpp"

#include "../common/json_fields.hpp"
#include "../common/sql_table.hpp"

#include <sluice/json.hpp>
#include <sluice/plugin.hpp>

#include <memory>
#include <string>
#include <vector>

namespace sluice::plugins::postgres {

class PgLoader {
public:
    static constexpr sluice_kind kind = SLUICE_KIND_LOADER;
    static constexpr const char *name = "postgres";
    static constexpr const char *version = "1.0.0";
    static constexpr const char *description =
        "Loads JSON records into a PostgreSQL table with COPY, one transaction per batch, insert or upsert; refused "
        "rows go to the error path with the server's message while the rest loads.";
    // A commit per call: batches waiting for it are joined into one. With
    // `threads` > 1 each worker has its own connection (inserts only).
    static constexpr uint64_t capabilities = SLUICE_CAP_COMMIT_WINDOWS;
    static config::Spec config_spec() {
        config::Spec spec = connection_spec().include(
            sql::TableTarget::spec(" (schema.table allowed)",
                                   "a PostgreSQL type: bigint, text, numeric(10,2), jsonb, timestamptz ..."));
        spec.add(config::Field::choice("durability", {"server", "relaxed"},
                                       "server: each commit waits as the server's synchronous_commit says (on by "
                                       "default: on its disk); relaxed: commits do not wait for the server's disk "
                                       "(synchronous_commit off for this session): faster, and a crash of the server "
                                       "machine can lose commits made in its last ~0.6 s that sluice has already "
                                       "acknowledged. Never acknowledged before the commit")
                     .default_to("server"));
        spec.add(config::Field::choice("copy_format", {"auto", "csv"},
                                       "auto: COPY in PostgreSQL's binary format when every column written has a "
                                       "type it is made for here (boolean, smallint, integer, bigint, real, double "
                                       "precision, text, varchar, json, jsonb), about 30% less work for the server; a "
                                       "window with a value that is not already of its column's type (a string for "
                                       "a number) goes as CSV. csv: always CSV")
                     .default_to("auto"));
        spec.add(config::Field::boolean("overlap_commits",
                                        "true: a window's COMMIT runs on the server while the next window is "
                                        "written over a second connection (the records are acknowledged once it "
                                        "has committed); a COMMIT that fails after its window was handed over stops "
                                        "the run, none of its records acknowledged, and a restart sends them again. "
                                        "false: one connection, each window waits for its COMMIT, and a failed "
                                        "COMMIT is retried like any other error of the server")
                     .default_to(true));
        return spec;
    }

    explicit PgLoader(const Context &ctx);
    // sluice.preflight/1: the server answers and the table takes rows.
    std::vector<std::string> preflight() const {
        std::vector<std::string> privileges{"INSERT"};
        if (target_.upsert) privileges.push_back("UPDATE");
        return connection_.preflight(target_.table, privileges, target_.create);
    }
    void start();
    void process(Input in, Emitter &out) { process_marked(in, out, nullptr); }
    // sluice.exactly_once/1: the host's marker is kept in table
    // sluice_markers (one row per table and stage), written in the batch's
    // own transaction.
    std::string recover();
    void process(Input in, Emitter &out, std::string_view marker) { process_marked(in, out, &marker); }
    void flush(Emitter &out);
    void stop();
    // sluice.delivery/1 with sluice.settle/1: a window is durable once the
    // next process call returns (it waits for this window's COMMIT before
    // sending its own) or settle does.
    bool durable_on_process() const { return true; }
    void settle() { wait_for_commit(); }

private:
    void process_marked(Input in, Emitter &out, const std::string_view *marker);
    // One batch in a transaction; throws Error for anything but refused rows.
    void load(Input in, Emitter &out, const std::string_view *marker);
    // Stores the marker in the open transaction.
    void store_marker(const std::string_view *marker);
    // What each (re)connected session needs: the upsert staging table.
    void prepare_session(Connection &conn);
    // Commits the open transaction: at once, or (overlap_commits) once the
    // COMMIT sent before has answered, sent without waiting, on the
    // connection the next window will not use.
    void commit();
    // Waits for the COMMIT in flight; throws FatalError if it failed: its
    // records were handed over as accepted and cannot be given back.
    void wait_for_commit();
    // The value of `column` in `record` as PostgreSQL text (nullopt: NULL).
    std::optional<std::string> text_of(const boost::json::object &record, const std::string &column);
    // The batch in one COPY, streamed as it is encoded (and, for upsert,
    // one INSERT ... SELECT); `sent`: the input records it holds. "" on
    // success, else the server's message (the transaction is open and failed).
    // In binary unless `as_csv`; a value binary cannot take as it is sets
    // `as_csv` (the COPY is abandoned: send the rows again as CSV).
    std::string copy_batch(Input in, Emitter &out, std::vector<uint32_t> &sent, bool &as_csv);
    // Rows rows[from, to) (input indices that encoded before) in one COPY
    // (insert only), binary unless `as_csv`; "" or the server's message.
    std::string copy_rows(Input in, const std::vector<uint32_t> &rows, size_t from, size_t to, bool as_csv);
    // "COPY <table> (<columns>) FROM STDIN (FORMAT ...)".
    std::string copy_sql(const std::string &table, bool binary) const;
    // One COPY into the table (or, for upsert, the staging table): started
    // (the server's message, "" = ok), the record just read added as a row
    // (false: binary cannot take one of its values as it is), finished (for
    // upsert, merged); "" or the server's message.
    std::string start_copy(bool binary);
    bool add_row(bool binary);
    std::string finish_copy(bool binary);
    // In an open transaction whose first COPY of `rows` failed at COPY line
    // `line` with `message`: the rows before it again in one COPY, the
    // refused one failed alone, the rest in a new COPY, and so on; each COPY
    // behind a savepoint. Row by row from wherever the server names no line.
    void copy_around_refused(Input in, Emitter &out, const std::vector<uint32_t> &rows, std::optional<uint64_t> line,
                             std::string message, bool as_csv);
    // rows[from, to) one INSERT each behind a savepoint, in the open
    // transaction: only the refused rows fail.
    void row_by_row(Input in, Emitter &out, const std::vector<uint32_t> &rows, size_t from, size_t to);
    // Finds each column's field in the record just read (column_fields_).
    void locate_columns();
    // The located row as CSV.
    void append_csv_row(std::string &out);

    Host host_;
    std::string marker_key_; // "<table>/<stage id>"
    bool markers_ready_ = false;
    ConnectionSettings connection_;
    sql::TableTarget target_;
    std::string column_list_, insert_sql_, upsert_suffix_;
    std::unique_ptr<Connection> conns_[2]; // the second only with overlap_commits
    Connection *conn_ = nullptr;           // the one this window is written on
    int current_ = 0, in_flight_ = -1;      // conns_ index of conn_, and of a COMMIT awaited (-1: none)
    bool overlap_ = true;
    bool relaxed_ = false; // durability: relaxed
    json::RecordParser parser_;
    json::RecordWriter writer_;
    JsonFields fields_;
    JsonValueReader values_;
    std::vector<size_t> hints_; // where each column was in the last record
    std::vector<const JsonField *> column_fields_; // each column's field in the record (nullptr: missing)
    bool csv_only_ = false;     // copy_format: csv
    std::vector<copy_binary::Code> binary_codes_; // each column's; empty: the table needs CSV
    std::string chunk_;         // the COPY data being encoded
    int64_t written_ = 0, refused_ = 0, row_by_row_batches_ = 0, copy_restarts_ = 0, csv_windows_ = 0, binary_batches_ = 0;
};

} // namespace sluice::plugins::postgres
