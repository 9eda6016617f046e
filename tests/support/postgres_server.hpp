// A real PostgreSQL server for one test: initdb into a temp directory, a
// unix socket there and a free port, trust authentication, stopped and
// removed at the end. Debian's postgresql package provides the binaries;
// as root the server runs as the postgres user (it refuses root).
#pragma once

#include <string>

namespace sluice::test {

class PostgresServer {
public:
    PostgresServer(); // throws std::runtime_error when it cannot start
    ~PostgresServer();
    PostgresServer(const PostgresServer &) = delete;
    PostgresServer &operator=(const PostgresServer &) = delete;

    // libpq connection string for database "postgres" as user "sluice".
    std::string conninfo() const;
    // Runs SQL (several statements allowed); throws with the server's message.
    void exec(const std::string &sql) const;
    // The first column of the first row of `query`, as text ("" for NULL).
    std::string scalar(const std::string &query) const;

    // Whether a PostgreSQL server can be run here at all.
    static bool available();

private:
    std::string run_as_owner(const std::string &command) const;

    std::string dir_, bin_;
    int port_ = 0;
    bool started_ = false;
};

} // namespace sluice::test
