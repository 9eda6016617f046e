#include "pg_connection.hpp"

#include <charconv>
#include <cstring>

namespace sluice::plugins::postgres {

std::string clean_message(const char *message) {
    std::string m = message ? message : "";
    if (m.rfind("ERROR:  ", 0) == 0) m.erase(0, 8);
    // Only the first line: DETAIL and HINT follow on their own lines.
    if (auto nl = m.find('\n'); nl != std::string::npos) m.resize(nl);
    return m;
}

Connection::Connection(const std::string &conninfo, const std::string &password, int connect_timeout_s) {
    const std::string timeout = std::to_string(connect_timeout_s);
    std::vector<const char *> keys{"dbname", "application_name"}, values{conninfo.c_str(), "sluice"};
    if (connect_timeout_s > 0) {
        keys.push_back("connect_timeout");
        values.push_back(timeout.c_str());
    }
    if (!password.empty()) {
        keys.push_back("password");
        values.push_back(password.c_str());
    }
    keys.push_back(nullptr);
    values.push_back(nullptr);
    // expand_dbname: the first "dbname" is a whole connection string.
    conn_ = PQconnectdbParams(keys.data(), values.data(), 1);
    if (!conn_ || PQstatus(conn_) != CONNECTION_OK) {
        std::string m = conn_ ? clean_message(PQerrorMessage(conn_)) : "out of memory";
        PQfinish(conn_);
        conn_ = nullptr;
        throw Error("cannot connect to PostgreSQL: " + m);
    }
    PQsetClientEncoding(conn_, "UTF8");
}

Connection::~Connection() { PQfinish(conn_); }

std::string Connection::error() const { return clean_message(PQerrorMessage(conn_)); }

Result Connection::exec(const std::string &sql) { return exec(sql, {}); }

Result Connection::exec(const std::string &sql, const std::vector<std::optional<std::string>> &params) {
    std::vector<const char *> values;
    for (const auto &p : params) values.push_back(p ? p->c_str() : nullptr);
    Result r(PQexecParams(conn_, sql.c_str(), int(values.size()), nullptr, values.data(), nullptr, nullptr, 0), &PQclear);
    ExecStatusType s = PQresultStatus(r.get());
    if (s != PGRES_COMMAND_OK && s != PGRES_TUPLES_OK) {
        note(r.get());
        throw Error("PostgreSQL: " + error());
    }
    return r;
}

std::string Connection::try_exec(const std::string &sql, const std::vector<std::optional<std::string>> &params) {
    try {
        exec(sql, params);
        return {};
    } catch (const Error &) {
        return error();
    }
}

std::string Connection::copy_in(const std::string &copy_sql, const std::string &data) {
    if (std::string problem = begin_copy(copy_sql); !problem.empty()) return problem;
    send_copy(data);
    return end_copy();
}

std::string Connection::begin_copy(const std::string &copy_sql) {
    copy_failed_ = false;
    Result start(PQexec(conn_, copy_sql.c_str()), &PQclear);
    if (PQresultStatus(start.get()) != PGRES_COPY_IN) {
        note(start.get());
        return error();
    }
    return {};
}

bool Connection::send_copy(std::string_view data) {
    if (copy_failed_ || data.empty()) return !copy_failed_;
    if (PQputCopyData(conn_, data.data(), int(data.size())) != 1) copy_failed_ = true;
    return !copy_failed_;
}

std::string Connection::end_copy() {
    if (copy_failed_ || PQputCopyEnd(conn_, nullptr) != 1) {
        note(nullptr);
        std::string problem = error();
        while (PGresult *r = PQgetResult(conn_)) PQclear(r);
        return problem.empty() ? std::string("the connection failed during COPY") : problem;
    }
    return finish_sent();
}

void Connection::abort_copy(const char *why) {
    if (!copy_failed_) PQputCopyEnd(conn_, why);
    while (PGresult *r = PQgetResult(conn_)) PQclear(r);
}

bool Connection::send(const std::string &sql) { return PQsendQuery(conn_, sql.c_str()) == 1; }

std::string Connection::finish_sent(const char *tag) {
    std::string problem;
    bool answered = false;
    while (PGresult *r = PQgetResult(conn_)) {
        answered = true;
        if (PQresultStatus(r) != PGRES_COMMAND_OK && problem.empty()) {
            note(r);
            problem = clean_message(PQresultErrorMessage(r));
        } else if (tag && problem.empty() && std::strcmp(PQcmdStatus(r), tag) != 0) {
            problem = std::string("the server answered ") + PQcmdStatus(r) + " instead of " + tag;
        }
        PQclear(r);
    }
    if (!answered && problem.empty()) {
        note(nullptr);
        problem = error();
        if (problem.empty()) problem = "the connection gave no answer";
    }
    return problem;
}

void Connection::note(const PGresult *r) {
    const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : nullptr;
    last_sqlstate_ = state ? state : "";
    // "COPY items, line 5, column amount: ..." (under a trigger's lines
    // when a trigger refused the row).
    last_copy_line_.reset();
    const char *context = r ? PQresultErrorField(r, PG_DIAG_CONTEXT) : nullptr;
    std::string_view rest = context ? context : "";
    std::string_view first;
    while (!rest.empty() && first.empty()) {
        const size_t nl = rest.find('\n');
        std::string_view line = rest.substr(0, nl);
        rest = nl == std::string_view::npos ? std::string_view() : rest.substr(nl + 1);
        if (line.rfind("COPY ", 0) == 0) first = line;
    }
    const size_t at = first.find(", line ");
    if (at == std::string_view::npos) return;
    uint64_t n = 0;
    const char *digits = first.data() + at + 7;
    auto [next, ec] = std::from_chars(digits, first.data() + first.size(), n);
    if (ec == std::errc() && next != digits) last_copy_line_ = n;
}

bool Connection::ensure_connected() {
    if (PQstatus(conn_) == CONNECTION_OK) return true;
    PQreset(conn_);
    if (PQstatus(conn_) != CONNECTION_OK) return false;
    PQsetClientEncoding(conn_, "UTF8");
    return true;
}

std::string quote_identifier(const std::string &name) {
    std::string out;
    size_t start = 0;
    while (true) {
        size_t dot = name.find('.', start);
        std::string part = name.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
        out += '"';
        for (char c : part) {
            if (c == '"') out += '"';
            out += c;
        }
        out += '"';
        if (dot == std::string::npos) break;
        out += '.';
        start = dot + 1;
    }
    return out;
}

std::vector<std::string> ConnectionSettings::preflight(const std::string &table, const std::vector<std::string> &privileges,
                                                      bool may_create) const {
    std::vector<std::string> problems;
    try {
        Connection c(conninfo, password, 5);
        if (table.empty()) return problems;
        Result r = c.exec("SELECT to_regclass($1) IS NOT NULL", {quote_identifier(table)});
        if (std::string(PQgetvalue(r.get(), 0, 0)) != "t") {
            if (!may_create) {
                problems.push_back("table: '" + table + "' does not exist (or is not visible to this user)");
            } else {
                Result s = c.exec("SELECT has_schema_privilege(current_schema(), 'CREATE')");
                if (std::string(PQgetvalue(s.get(), 0, 0)) != "t")
                    problems.push_back("table: '" + table + "' does not exist and this user may not create it");
            }
            return problems;
        }
        for (const std::string &p : privileges) {
            Result g = c.exec("SELECT has_table_privilege($1, $2)", {quote_identifier(table), p});
            if (std::string(PQgetvalue(g.get(), 0, 0)) != "t")
                problems.push_back("table: this user may not " + p + " on '" + table + "'");
        }
    } catch (const std::exception &e) {
        problems.push_back(std::string("conninfo: ") + e.what());
    }
    return problems;
}

} // namespace sluice::plugins::postgres
