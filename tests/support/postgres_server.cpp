#include "postgres_server.hpp"

#include "free_port.hpp"

#include <libpq-fe.h>

#include <glob.h>
#include <netinet/in.h>
#include <pwd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <stdexcept>
#include <thread>

namespace sluice::test {

namespace {

std::string find_bin() {
    glob_t g{};
    std::string bin;
    if (::glob("/usr/lib/postgresql/*/bin/initdb", 0, nullptr, &g) == 0 && g.gl_pathc > 0)
        bin = std::filesystem::path(g.gl_pathv[g.gl_pathc - 1]).parent_path().string();
    globfree(&g);
    return bin;
}

} // namespace

bool PostgresServer::available() { return !find_bin().empty(); }

std::string PostgresServer::run_as_owner(const std::string &command) const {
    // The server refuses to run as root: use the postgres account then.
    std::string cmd = ::geteuid() == 0 ? "runuser -u postgres -- sh -c '" + command + "'" : command;
    return cmd + " > " + dir_ + "/setup.log 2>&1";
}

PostgresServer::PostgresServer() {
    bin_ = find_bin();
    if (bin_.empty()) throw std::runtime_error("no PostgreSQL server binaries under /usr/lib/postgresql");
    std::string tmpl = (std::filesystem::temp_directory_path() / "sluice-pg-XXXXXX").string();
    if (!mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
    dir_ = tmpl;
    if (::geteuid() == 0) {
        passwd *pw = ::getpwnam("postgres");
        if (!pw) throw std::runtime_error("running as root and there is no postgres user");
        if (::chown(dir_.c_str(), pw->pw_uid, pw->pw_gid) != 0) throw std::runtime_error("chown failed");
    }
    port_ = free_loopback_port();
    std::string init = bin_ + "/initdb -D " + dir_ + "/data -U sluice --auth=trust -E UTF8 --no-locale";
    if (std::system(run_as_owner(init).c_str()) != 0)
        throw std::runtime_error("initdb failed (see " + dir_ + "/setup.log)");
    std::string start = bin_ + "/pg_ctl -D " + dir_ + "/data -l " + dir_ + "/server.log -w -t 60 -o \"-p " +
                        std::to_string(port_) + " -k " + dir_ + " -c listen_addresses=127.0.0.1 -c fsync=off\" start";
    if (std::system(run_as_owner(start).c_str()) != 0)
        throw std::runtime_error("the server did not start (see " + dir_ + "/server.log)");
    started_ = true;
}

PostgresServer::~PostgresServer() {
    if (started_) {
        // Nothing to do about a server that will not stop: its directory goes anyway.
        [[maybe_unused]] int rc = std::system(run_as_owner(bin_ + "/pg_ctl -D " + dir_ + "/data -m immediate -w stop").c_str());
    }
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
}

std::string PostgresServer::conninfo() const {
    return "host=" + dir_ + " port=" + std::to_string(port_) + " user=sluice dbname=postgres";
}

void PostgresServer::exec(const std::string &sql) const {
    PGconn *c = PQconnectdb(conninfo().c_str());
    PGresult *r = PQexec(c, sql.c_str());
    std::string error = PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK
                            ? ""
                            : std::string(PQerrorMessage(c));
    PQclear(r);
    PQfinish(c);
    if (!error.empty()) throw std::runtime_error(error);
}

std::string PostgresServer::scalar(const std::string &query) const {
    PGconn *c = PQconnectdb(conninfo().c_str());
    PGresult *r = PQexec(c, query.c_str());
    std::string out;
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        std::string error = PQerrorMessage(c);
        PQclear(r);
        PQfinish(c);
        throw std::runtime_error(error);
    }
    if (PQntuples(r) > 0 && !PQgetisnull(r, 0, 0)) out = PQgetvalue(r, 0, 0);
    PQclear(r);
    PQfinish(c);
    return out;
}

} // namespace sluice::test
