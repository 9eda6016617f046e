#include "pg_loader.hpp"

#include <algorithm>
#include <charconv>
#include <cstdlib>

namespace sluice::plugins::postgres {

namespace bj = boost::json;

namespace {

// A CSV field, quoted (so that an empty string is not NULL), quotes doubled.
void append_csv(std::string &out, std::string_view v) {
    out += '"';
    for (size_t start = 0;;) {
        const size_t quote = v.find('"', start);
        if (quote == std::string_view::npos) {
            out.append(v.substr(start));
            break;
        }
        out.append(v.substr(start, quote + 1 - start));
        out += '"';
        start = quote + 1;
    }
    out += '"';
}

} // namespace

PgLoader::PgLoader(const Context &ctx) : host_(ctx.host), marker_key_(std::string(ctx.stage_id)) {
    json::Config c(ctx.config_json);
    connection_ = ConnectionSettings::read(c);
    target_ = sql::TableTarget::read(c, /*types_required=*/true);
    marker_key_ = target_.table + "/" + marker_key_;
    relaxed_ = c.string("durability") == "relaxed";
    csv_only_ = c.string("copy_format") == "csv";
    overlap_ = c.boolean("overlap_commits", true);
    // Several connections commit in any order: for an upsert, an older
    // value of a key could overwrite a newer one.
    if (target_.upsert && ctx.worker_count > 1)
        c.fail("mode", "upsert needs the stage's threads at 1 (" + std::to_string(ctx.worker_count) +
                           " connections would apply the updates of one key in any order)");
}

void PgLoader::start() {
    conns_[0] = std::make_unique<Connection>(connection_.conninfo, connection_.password);
    if (overlap_) conns_[1] = std::make_unique<Connection>(connection_.conninfo, connection_.password);
    current_ = 0;
    in_flight_ = -1;
    conn_ = conns_[0].get();
    const std::string table = quote_identifier(target_.table);
    if (target_.create) conn_->exec(target_.create_sql(table));
    std::vector<std::string> existing;
    std::vector<uint32_t> types;
    std::vector<std::string> type_names;
    {
        std::string problem = conn_->try_exec("SELECT 1 FROM " + table + " LIMIT 0");
        if (!problem.empty()) throw Error("table '" + target_.table + "': " + problem);
        Result r = conn_->exec("SELECT attname, atttypid, format_type(atttypid, atttypmod) FROM pg_attribute "
                               "WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
                               {table});
        for (int i = 0; i < PQntuples(r.get()); ++i) {
            existing.emplace_back(PQgetvalue(r.get(), i, 0));
            types.push_back(uint32_t(std::strtoul(PQgetvalue(r.get(), i, 1), nullptr, 10)));
            type_names.emplace_back(PQgetvalue(r.get(), i, 2));
        }
    }
    target_.match_columns(existing);
    // Binary COPY when every column written has a type it is made for.
    binary_codes_.clear();
    std::string why_csv = csv_only_ ? "copy_format is csv" : "";
    for (const sql::Column &col : target_.columns) {
        if (!why_csv.empty()) break;
        const size_t k = size_t(std::find(existing.begin(), existing.end(), col.name) - existing.begin());
        if (auto code = copy_binary::code_for_type(types[k])) binary_codes_.push_back(*code);
        else why_csv = "column '" + col.name + "' is " + type_names[k];
    }
    if (!why_csv.empty()) binary_codes_.clear();
    host_.debug("COPY format: " + (why_csv.empty() ? std::string("binary") : "csv (" + why_csv + ")"));
    column_list_ = target_.column_list();
    std::string placeholders;
    for (size_t i = 0; i < target_.columns.size(); ++i) placeholders += (i ? ", $" : "$") + std::to_string(i + 1);
    insert_sql_ = "INSERT INTO " + table + " (" + column_list_ + ") VALUES (" + placeholders + ")";
    upsert_suffix_ = target_.upsert_clause();
    for (auto &conn : conns_)
        if (conn) prepare_session(*conn);
}

void PgLoader::prepare_session(Connection &conn) {
    if (relaxed_) {
        // Asked for in the manifest: commits return before the server's
        // WAL reaches its disk (the server writes it within
        // 3 x wal_writer_delay). Said at info, as the server sees it.
        conn.exec("SET synchronous_commit = off");
        Result r = conn.exec("SHOW synchronous_commit");
        host_.info(std::string("durability relaxed: synchronous_commit is ") + PQgetvalue(r.get(), 0, 0) +
                   " for this loader's session");
    }
    // Batches are copied here first, then merged in one statement.
    if (target_.upsert)
        conn.exec("CREATE TEMP TABLE IF NOT EXISTS sluice_staging (LIKE " + quote_identifier(target_.table) +
                  " INCLUDING DEFAULTS) ON COMMIT DELETE ROWS");
}

void PgLoader::stop() {
    // A COMMIT still in flight (the run is stopping on an error) is left to
    // the server: its records were never acknowledged either way.
    conn_ = nullptr;
    for (auto &conn : conns_) conn.reset();
    in_flight_ = -1;
}

void PgLoader::commit() {
    if (!overlap_) {
        conn_->exec("COMMIT");
        return;
    }
    // In order: this window's marker covers the pulls of the one before, so
    // it must never commit unless that one did.
    wait_for_commit();
    if (!conn_->send("COMMIT")) throw Error("PostgreSQL: " + conn_->error());
    in_flight_ = current_;
    current_ = 1 - current_;
}

void PgLoader::wait_for_commit() {
    if (in_flight_ < 0) return;
    Connection &conn = *conns_[in_flight_];
    in_flight_ = -1;
    const std::string problem = conn.finish_sent("COMMIT");
    if (!problem.empty())
        throw FatalError("PostgreSQL: the COMMIT of a window already handed over failed: " + problem +
                         " (none of its records is acknowledged; a restart sends them again)");
}

std::optional<std::string> PgLoader::text_of(const bj::object &record, const std::string &column) {
    const bj::value *v = record.if_contains(column);
    if (!v || v->is_null()) return std::nullopt;
    if (v->is_string()) return std::string(v->get_string());
    if (v->is_bool()) return std::string(v->get_bool() ? "true" : "false");
    return std::string(writer_.write(*v)); // numbers as written; objects and arrays as JSON
}

void PgLoader::locate_columns() {
    const std::vector<JsonField> &fields = fields_.fields();
    hints_.resize(target_.columns.size(), 0);
    column_fields_.assign(target_.columns.size(), nullptr);
    for (size_t c = 0; c < target_.columns.size(); ++c) {
        // Records of one source mostly share their layout: look where the
        // column was last time first.
        const std::string &name = target_.columns[c].name;
        if (hints_[c] < fields.size() && fields[hints_[c]].key == name) {
            column_fields_[c] = &fields[hints_[c]];
            continue;
        }
        for (size_t k = 0; k < fields.size(); ++k)
            if (fields[k].key == name) {
                column_fields_[c] = &fields[k];
                hints_[c] = k;
                break;
            }
    }
}

void PgLoader::append_csv_row(std::string &out) {
    for (size_t c = 0; c < column_fields_.size(); ++c) {
        if (c) out += ',';
        const JsonField *f = column_fields_[c];
        if (!f) continue; // missing: NULL
        switch (f->type()) {
        case JsonType::null: break; // an unquoted empty field is NULL
        case JsonType::string: append_csv(out, values_.string(f->text)); break;
        case JsonType::boolean:
        case JsonType::number: out += f->text; break; // as written
        default: append_csv(out, f->text); // objects and arrays as JSON
        }
    }
    out += '\n';
}

std::string PgLoader::copy_sql(const std::string &table, bool binary) const {
    return "COPY " + table + " (" + column_list_ + ") FROM STDIN (FORMAT " + (binary ? "binary" : "csv") + ")";
}

std::string PgLoader::start_copy(bool binary) {
    const std::string target = target_.upsert ? "sluice_staging" : quote_identifier(target_.table);
    std::string problem = conn_->begin_copy(copy_sql(target, binary));
    chunk_.clear();
    if (problem.empty() && binary) copy_binary::append_header(chunk_);
    return problem;
}

bool PgLoader::add_row(bool binary) {
    // Sent in parts of this size as they are made: the server parses the
    // parts waiting in the socket while the next is encoded. Several must
    // fit in the socket's buffer (about 200 KB by default): with parts
    // larger than that, each send waited for the server to drain it and
    // the server then idled while the loader encoded (1M rows: 256 KiB
    // parts 1.18 s, 32 KiB 1.07 s; 8 and 64 KiB 4-6 % slower than 32).
    constexpr size_t kPart = 32 << 10;
    locate_columns();
    if (!binary) append_csv_row(chunk_);
    else if (!copy_binary::append_row(chunk_, binary_codes_, column_fields_, values_)) return false;
    if (chunk_.size() >= kPart) {
        conn_->send_copy(chunk_);
        chunk_.clear();
    }
    return true;
}

std::string PgLoader::finish_copy(bool binary) {
    if (binary) copy_binary::append_trailer(chunk_);
    conn_->send_copy(chunk_);
    std::string problem = conn_->end_copy();
    if (!problem.empty() || !target_.upsert) return problem;
    return conn_->try_exec("INSERT INTO " + quote_identifier(target_.table) + " (" + column_list_ + ") SELECT " + column_list_ +
                           " FROM sluice_staging" + upsert_suffix_);
}

std::string PgLoader::copy_batch(Input in, Emitter &out, std::vector<uint32_t> &sent, bool &as_csv) {
    const bool binary = !as_csv;
    bool gave_up = false; // binary could not take a value as it is
    if (std::string problem = start_copy(binary); !problem.empty()) return problem;
    std::string error;
    for (uint32_t i = 0; i < in.size(); ++i) {
        if (!in[i].is_json() || !fields_.read(in[i].payload(), error)) {
            out.fail(i, "postgres: " + (in[i].is_json() ? error : std::string("the record is not JSON")));
            ++refused_;
            continue;
        }
        sent.push_back(i);
        // Once binary gave up, the rest is only read (and failed if not JSON).
        if (!gave_up) gave_up = !add_row(binary);
    }
    if (gave_up) {
        // The server has part of the rows: the COPY is abandoned (the
        // transaction with it) and the caller sends them all as CSV.
        conn_->abort_copy("sluice: a value needs CSV");
        ++csv_windows_;
        as_csv = true;
        return "binary COPY abandoned";
    }
    return finish_copy(binary);
}

std::string PgLoader::recover() {
    conn_->exec("CREATE TABLE IF NOT EXISTS sluice_markers (sink text PRIMARY KEY, marker text NOT NULL)");
    markers_ready_ = true;
    Result r = conn_->exec("SELECT marker FROM sluice_markers WHERE sink = $1", {marker_key_});
    return PQntuples(r.get()) ? std::string(PQgetvalue(r.get(), 0, 0)) : std::string();
}

void PgLoader::store_marker(const std::string_view *marker) {
    if (!marker || !markers_ready_) return;
    // In the batch's transaction: the rows and the marker, both or neither.
    conn_->exec("INSERT INTO sluice_markers (sink, marker) VALUES ($1, $2) "
                "ON CONFLICT (sink) DO UPDATE SET marker = EXCLUDED.marker",
                {marker_key_, std::string(*marker)});
}

void PgLoader::process_marked(Input in, Emitter &out, const std::string_view *marker) {
    // A refused row fails alone (its SQLSTATE is about the data); anything
    // else is the server's or the connection's doing: the whole batch is
    // rolled back and the host tries it again, then fails the stage.
    // Whatever happens to this window, the one committing before it is
    // settled before this call returns: that is what the host counts on.
    conn_ = conns_[current_].get();
    auto roll_back = [&] {
        if (PQstatus(conn_->raw()) == CONNECTION_OK && PQtransactionStatus(conn_->raw()) != PQTRANS_IDLE)
            conn_->try_exec("ROLLBACK");
    };
    // A failure that is not fatal: the window before is settled first (its
    // COMMIT failing is fatal, and says so instead).
    auto roll_back_and_settle = [&] {
        roll_back();
        wait_for_commit();
    };
    try {
        load(in, out, marker);
    } catch (const FatalError &) {
        roll_back();
        throw;
    } catch (const EnvironmentError &) {
        roll_back_and_settle();
        throw;
    } catch (const Error &e) {
        roll_back_and_settle();
        throw EnvironmentError(e.what());
    } catch (...) {
        roll_back_and_settle();
        throw;
    }
}

void PgLoader::load(Input in, Emitter &out, const std::string_view *marker) {
    if (PQstatus(conn_->raw()) != CONNECTION_OK) {
        if (!conn_->ensure_connected()) throw EnvironmentError("PostgreSQL: connection lost: " + conn_->error());
        host_.warn("reconnected to PostgreSQL");
        prepare_session(*conn_);
    }
    // A batch that failed half-way (the connection dropped, say) may have
    // left a transaction open: start clean.
    if (PQtransactionStatus(conn_->raw()) != PQTRANS_IDLE) conn_->try_exec("ROLLBACK");
    // Fast path: the whole batch in one COPY (records that are not JSON
    // objects fail on the way).
    conn_->exec("BEGIN");
    std::vector<uint32_t> index; // input record of each row sent
    bool as_csv = binary_codes_.empty();
    std::string problem = copy_batch(in, out, index, as_csv);
    if (as_csv && !binary_codes_.empty()) {
        // Binary could not take a value as it is: the rows again, as CSV.
        conn_->exec("ROLLBACK");
        conn_->exec("BEGIN");
        problem = copy_rows(in, index, 0, index.size(), true);
    }
    if (problem.empty()) {
        store_marker(marker);
        commit();
        written_ += int64_t(index.size());
        if (!as_csv) ++binary_batches_;
        return;
    }
    if (!conn_->last_error_is_row_error()) throw Error("PostgreSQL: " + problem);
    // Some row was refused: the batch again in a new transaction, in which
    // only the refused rows fail.
    const std::optional<uint64_t> line = target_.upsert ? std::nullopt : conn_->last_copy_line();
    conn_->exec("ROLLBACK");
    conn_->exec("BEGIN");
    copy_around_refused(in, out, index, line, problem, as_csv);
    store_marker(marker);
    commit();
}

std::string PgLoader::copy_rows(Input in, const std::vector<uint32_t> &rows, size_t from, size_t to, bool as_csv) {
    if (std::string problem = start_copy(!as_csv); !problem.empty()) return problem;
    std::string error;
    for (size_t k = from; k < to; ++k) {
        fields_.read(in[rows[k]].payload(), error); // read before: it reads again
        if (!add_row(!as_csv)) {
            // Encoded before: cannot happen, unless the record changed.
            conn_->abort_copy("sluice: a record changed");
            throw Error("a record encoded in binary before could not be encoded again");
        }
    }
    return finish_copy(!as_csv);
}

void PgLoader::copy_around_refused(Input in, Emitter &out, const std::vector<uint32_t> &rows,
                                   std::optional<uint64_t> line, std::string message, bool as_csv) {
    // The line the server names is the row's place in that COPY (one row
    // per line, embedded newlines quoted). The rows before it loaded then:
    // again in one COPY; it fails alone; what follows goes in slices, each
    // behind a savepoint, so that the next refused row costs at most a
    // slice sent again, not the rest of the window (a few refused rows in a
    // window of 16384 cost a few COPYs more, not 16384 statements). Should
    // the server name no line (a message in another language, an error
    // raised after the COPY), the rest goes row by row.
    constexpr size_t kSlice = 2048;
    size_t pos = 0;
    for (;;) {
        if (!line || *line < 1 || *line > rows.size() - pos) return row_by_row(in, out, rows, pos, rows.size());
        const size_t bad = pos + size_t(*line - 1);
        if (bad > pos) {
            conn_->exec("SAVEPOINT sluice_copy");
            std::string problem = copy_rows(in, rows, pos, bad, as_csv);
            if (problem.empty()) {
                conn_->exec("RELEASE SAVEPOINT sluice_copy");
                written_ += int64_t(bad - pos);
            } else {
                if (!conn_->last_error_is_row_error()) throw Error("PostgreSQL: " + problem);
                conn_->exec("ROLLBACK TO SAVEPOINT sluice_copy");
                row_by_row(in, out, rows, pos, bad);
            }
        }
        out.fail(rows[bad], "postgres: " + message);
        ++refused_;
        pos = bad + 1;
        if (pos < rows.size()) ++copy_restarts_;
        for (line.reset(); !line;) {
            if (pos == rows.size()) return;
            const size_t to = std::min(rows.size(), pos + kSlice);
            conn_->exec("SAVEPOINT sluice_copy");
            message = copy_rows(in, rows, pos, to, as_csv);
            if (message.empty()) {
                conn_->exec("RELEASE SAVEPOINT sluice_copy");
                written_ += int64_t(to - pos);
                pos = to;
                continue;
            }
            if (!conn_->last_error_is_row_error()) throw Error("PostgreSQL: " + message);
            line = conn_->last_copy_line();
            conn_->exec("ROLLBACK TO SAVEPOINT sluice_copy");
            if (!line) return row_by_row(in, out, rows, pos, rows.size());
        }
    }
}

void PgLoader::row_by_row(Input in, Emitter &out, const std::vector<uint32_t> &rows, size_t from, size_t to) {
    ++row_by_row_batches_;
    const std::string sql = insert_sql_ + upsert_suffix_;
    std::string error;
    for (size_t k = from; k < to; ++k) {
        const uint32_t i = rows[k];
        // The one-pass read checks the top level only: a nested value that
        // is not JSON shows here.
        bj::object *record = parser_.parse_object(in[i].payload(), error);
        if (!record) {
            out.fail(i, "postgres: " + error);
            ++refused_;
            continue;
        }
        std::vector<std::optional<std::string>> row;
        for (const sql::Column &col : target_.columns) row.push_back(text_of(*record, col.name));
        conn_->exec("SAVEPOINT sluice_row");
        std::string problem = conn_->try_exec(sql, row);
        if (!problem.empty() && !conn_->last_error_is_row_error()) throw Error("PostgreSQL: " + problem);
        if (problem.empty()) {
            conn_->exec("RELEASE SAVEPOINT sluice_row");
            ++written_;
        } else {
            conn_->exec("ROLLBACK TO SAVEPOINT sluice_row");
            out.fail(i, "postgres: " + problem);
            ++refused_;
        }
    }
}

void PgLoader::flush(Emitter &) {
    wait_for_commit();
    host_.counter("rows_written", written_);
    host_.counter("rows_refused", refused_);
    if (row_by_row_batches_) host_.counter("batches_loaded_row_by_row", row_by_row_batches_);
    if (copy_restarts_) host_.counter("copy_restarts", copy_restarts_);
    if (binary_batches_) host_.counter("batches_copied_in_binary", binary_batches_);
    if (csv_windows_) host_.counter("batches_sent_as_csv", csv_windows_);
}

} // namespace sluice::plugins::postgres
