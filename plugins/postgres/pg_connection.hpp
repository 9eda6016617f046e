// A libpq connection with results as RAII values and errors as
// sluice::Error carrying the server's message.
#pragma once

#include <sluice/config_spec.hpp>
#include <sluice/json.hpp>
#include <sluice/plugin.hpp>

#include <libpq-fe.h>

#include <cstdlib>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sluice::plugins::postgres {

using Result = std::unique_ptr<PGresult, decltype(&PQclear)>;

// "conninfo" and "password_env", declared once for both stages.
inline config::Spec connection_spec() {
    using config::Field;
    return {
        Field::string("conninfo", "libpq connection string or URI: \"host=db port=5432 dbname=shop user=etl\" or "
                                  "postgresql://etl@db/shop")
            .required()
            .not_empty(),
        Field::string("password_env",
                      "Environment variable holding the password (keeps it out of the manifest)")
            .not_empty(),
        Field::string("password", "The password, as a reference: ${VARIABLE} or ${file:PATH} (takes precedence "
                                  "over password_env)")
            .secret(),
    };
}

struct ConnectionSettings {
    std::string conninfo, password;

    // sluice.preflight/1: the server answers, `table` (when given) exists
    // and allows `privileges` (e.g. {"INSERT"}); with `may_create` a
    // missing table is fine if the schema allows CREATE. Problems as
    // "field: what".
    std::vector<std::string> preflight(const std::string &table, const std::vector<std::string> &privileges,
                                       bool may_create) const;

    // Throws Error naming password_env when that variable is not set.
    static ConnectionSettings read(const json::Config &c) {
        ConnectionSettings s;
        s.conninfo = c.required_string("conninfo");
        if (std::string password = c.string("password"); !password.empty()) {
            s.password = password;
        } else if (std::string env = c.string("password_env"); !env.empty()) {
            const char *p = std::getenv(env.c_str());
            if (!p) c.fail("password_env", "environment variable " + env + " is not set");
            s.password = p;
        }
        return s;
    }
};

class Connection {
public:
    // Connects (a password can come from an environment variable, so it is
    // never in the manifest). Throws Error.
    // `connect_timeout_s` > 0 bounds the connection attempt (a preflight
    // must not hang on an unreachable host).
    Connection(const std::string &conninfo, const std::string &password, int connect_timeout_s = 0);
    ~Connection();
    Connection(const Connection &) = delete;
    Connection &operator=(const Connection &) = delete;

    // Runs a statement that returns no rows or some; throws Error on failure.
    Result exec(const std::string &sql);
    // With text parameters (nullopt: NULL); throws Error on failure.
    Result exec(const std::string &sql, const std::vector<std::optional<std::string>> &params);
    // As exec, but returns the error message instead of throwing ("" = ok).
    std::string try_exec(const std::string &sql, const std::vector<std::optional<std::string>> &params = {});

    // COPY ... FROM STDIN with `data` (CSV); returns the server's message, "" = ok.
    std::string copy_in(const std::string &copy_sql, const std::string &data);
    // The same streamed: begin_copy, then send as the data is made (the
    // server parses one part while the next is encoded), then end_copy.
    // begin_copy and end_copy return the server's message ("" = ok);
    // send_copy false when the connection failed (end_copy says why).
    std::string begin_copy(const std::string &copy_sql);
    bool send_copy(std::string_view data);
    std::string end_copy();
    // Ends the COPY as failed (the server rolls it back with `why`); the
    // transaction is then aborted.
    void abort_copy(const char *why);

    // A statement sent without waiting for its answer (a COMMIT the server
    // works on while the loader writes the next window elsewhere); false
    // when it could not be sent. finish_sent returns its answer: "" or the
    // server's message (also when the command tag is not `tag`, given: a
    // COMMIT of a failed transaction answers ROLLBACK); end_copy reads the
    // COPY's answer with it too. Nothing else may be sent in between.
    bool send(const std::string &sql);
    std::string finish_sent(const char *tag = nullptr);

    PGconn *raw() const { return conn_; }
    std::string error() const;
    // Whether the last failure was about the rows sent (SQLSTATE class 21,
    // cardinality: one key twice in an upsert; 22, data exception; 23,
    // integrity constraint) rather than about the server or the connection
    // (disk full, shut down, permission denied, connection lost).
    bool last_error_is_row_error() const {
        for (const char *cls : {"21", "22", "23"})
            if (last_sqlstate_.rfind(cls, 0) == 0) return true;
        return false;
    }
    // The line of the COPY data the last failure was about (1 = the first
    // row sent), from the server's context "COPY t, line N..."; nullopt when
    // it names none.
    std::optional<uint64_t> last_copy_line() const { return last_copy_line_; }
    // Reconnects a connection that was lost; false if that fails too.
    bool ensure_connected();

private:
    bool copy_failed_ = false; // a send during the current COPY failed
    // Remembers the SQLSTATE of a failed result (empty for none).
    void note(const PGresult *r);

    PGconn *conn_ = nullptr;
    std::string last_sqlstate_;
    std::optional<uint64_t> last_copy_line_;
};

// A name quoted as an SQL identifier; "schema.table" is quoted per part.
std::string quote_identifier(const std::string &name);
// The server's primary message without "ERROR:  " and trailing newlines.
std::string clean_message(const char *message);

} // namespace sluice::plugins::postgres
