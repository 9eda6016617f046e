// One connection to a Redis server: plain TCP or TLS (Poco::Net), AUTH and
// SELECT on connect, commands written in pipelined batches and replies read
// with hiredis's protocol reader. Debian's hiredis (0.14) has no TLS of its
// own, so hiredis does the protocol and Poco the transport.
#pragma once

#include <sluice/config_spec.hpp>
#include <sluice/json.hpp>
#include <sluice/plugin.hpp>

#include <hiredis/hiredis.h>

#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace Poco::Net {
class StreamSocket;
}

namespace sluice::plugins::redis {

struct ReplyFree {
    void operator()(redisReply *r) const {
        if (r) freeReplyObject(r);
    }
};
// A reply as hiredis parsed it (type REDIS_REPLY_*).
using Reply = std::unique_ptr<redisReply, ReplyFree>;

inline bool is_error(const redisReply *r) { return !r || r->type == REDIS_REPLY_ERROR; }
inline std::string_view text(const redisReply *r) {
    return r && r->str ? std::string_view(r->str, r->len) : std::string_view();
}

// Where and how to connect: "url", "username", "password", "tls_verify",
// "ca_file", "connect_timeout_ms"; declared once for both stages.
config::Spec endpoint_spec();

struct Endpoint {
    std::string host = "127.0.0.1";
    int port = 6379;
    int db = 0;
    bool tls = false; // rediss://
    bool tls_verify = true;
    std::string ca_file, username, password;
    std::chrono::milliseconds timeout{5000};

    // "redis://host:port/db" (never the password): for messages and the
    // records' source attribute.
    std::string display() const;
    static Endpoint read(const json::Config &c, const Context &ctx);
};

// Commands in RESP, appended into one buffer and written at once.
class CommandBuffer {
public:
    void add(std::initializer_list<std::string_view> args);
    // A command whose arguments come in parts: begin(count), then count arg()s.
    void begin(size_t arg_count);
    void arg(std::string_view a);
    size_t commands() const { return commands_; }
    const std::string &bytes() const { return bytes_; }
    void clear() {
        bytes_.clear();
        commands_ = 0;
    }

private:
    std::string bytes_;
    size_t commands_ = 0;
};

class Connection;

// sluice.preflight/1 of both stages: the server answers (and takes the
// password), and `stream` is a stream or does not exist yet.
std::vector<std::string> stream_preflight(const Endpoint &endpoint, const std::string &stream);

class Connection {
public:
    // Connects, authenticates and selects the database; throws
    // EnvironmentError with the endpoint and the reason.
    explicit Connection(const Endpoint &endpoint);
    ~Connection();
    Connection(const Connection &) = delete;
    Connection &operator=(const Connection &) = delete;

    // Writes every command of `commands` and reads one reply per command,
    // waiting at most `extra_wait` longer than the connect timeout for each
    // (a blocking XREADGROUP waits that long on purpose). Throws
    // EnvironmentError when the connection fails; the object is then
    // unusable (see broken()).
    std::vector<Reply> run(const CommandBuffer &commands, std::chrono::milliseconds extra_wait = {});
    Reply run_one(std::initializer_list<std::string_view> args, std::chrono::milliseconds extra_wait = {});
    bool broken() const { return broken_; }

private:
    [[noreturn]] void lost(const std::string &what);

    Endpoint endpoint_;
    std::unique_ptr<Poco::Net::StreamSocket> socket_;
    redisReader *reader_ = nullptr;
    std::vector<char> buffer_;
    bool broken_ = false;
};

} // namespace sluice::plugins::redis
