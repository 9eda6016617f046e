// A real redis-server for one test: Debian's redis-server on loopback, a
// free port, no persistence, in a temp directory removed at the end.
// Optionally with a password and a TLS port (a CA and a server certificate
// for localhost/127.0.0.1 made with the openssl tool). The test talks to it
// through hiredis on the plain port.
#pragma once

#include <hiredis/hiredis.h>

#include <memory>
#include <string>
#include <vector>

namespace sluice::test {

struct RedisReplyFree {
    void operator()(redisReply *r) const {
        if (r) freeReplyObject(r);
    }
};
using RedisReply = std::unique_ptr<redisReply, RedisReplyFree>;

struct RedisOptions {
    std::string password; // requirepass; empty: none
    bool tls = false;     // also listen with TLS on tls_port()
    std::string maxmemory; // e.g. "2mb" with noeviction: writes get OOM
};

class RedisServer {
public:
    explicit RedisServer(RedisOptions options = {}); // throws std::runtime_error
    ~RedisServer();
    RedisServer(const RedisServer &) = delete;
    RedisServer &operator=(const RedisServer &) = delete;

    int port() const { return port_; }
    int tls_port() const { return tls_port_; }
    std::string url() const { return "redis://127.0.0.1:" + std::to_string(port_); }
    std::string tls_url() const { return "rediss://localhost:" + std::to_string(tls_port_); }
    // PEM of the CA that signed the server's certificate.
    std::string ca_file() const { return dir_ + "/ca.pem"; }

    // One command; throws on a connection failure (an error reply is
    // returned as such).
    RedisReply command(const std::vector<std::string> &args);
    // The integer or the text of a reply.
    long long integer(const std::vector<std::string> &args);
    std::string text(const std::vector<std::string> &args);
    // XADD stream * body PAYLOAD for every payload, pipelined.
    void add_entries(const std::string &stream, const std::vector<std::string> &payloads);
    // Entry ids pending in `group` (of `consumer` when given).
    std::vector<std::string> pending_ids(const std::string &stream, const std::string &group,
                                         const std::string &consumer = "");
    // A group's field from XINFO GROUPS ("pending", "lag", "entries-read" ...).
    long long group_info(const std::string &stream, const std::string &group, const std::string &field);

    static bool available();

private:
    void make_certificates();

    std::string dir_;
    int port_ = 0, tls_port_ = 0;
    pid_t pid_ = -1;
    RedisOptions options_;
    redisContext *client_ = nullptr;
};

} // namespace sluice::test
