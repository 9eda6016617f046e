#include "redis_connection.hpp"

#include <Poco/Exception.h>
#include <Poco/Net/Context.h>
#include <Poco/Net/NetException.h>
#include <Poco/Net/SecureStreamSocket.h>
#include <Poco/Net/SocketAddress.h>
#include <Poco/Net/StreamSocket.h>
#include <Poco/URI.h>

#include <charconv>

namespace sluice::plugins::redis {

config::Spec endpoint_spec() {
    using config::Field;
    return config::Spec{
        Field::string("url", "redis://HOST:PORT/DB, or rediss://... for TLS; no password in it (use password)")
            .not_empty()
            .default_to("redis://127.0.0.1:6379/0"),
        Field::string("username", "ACL user for AUTH (Redis 6+); empty: the default user").default_to(""),
        Field::string("password", "Password for AUTH, as a reference: ${VARIABLE} or ${file:PATH}").secret(),
        Field::integer("connect_timeout_ms", "Connecting, and each reply, must take no longer than this")
            .minimum(1)
            .default_to(5000),
        Field::boolean("tls_verify", "rediss: verify the server's certificate and its name").default_to(true),
        Field::string("ca_file", "rediss: CA certificates (PEM) to trust besides the system's, relative to the "
                                 "manifest")
            .not_empty(),
    };
}

std::string Endpoint::display() const {
    return std::string(tls ? "rediss://" : "redis://") + host + ":" + std::to_string(port) + "/" + std::to_string(db);
}

Endpoint Endpoint::read(const json::Config &c, const Context &ctx) {
    Endpoint e;
    std::string url = c.string("url", "redis://127.0.0.1:6379/0");
    Poco::URI uri;
    try {
        uri = Poco::URI(url);
    } catch (const Poco::Exception &x) {
        c.fail("url", "not a URL: " + x.displayText());
    }
    if (uri.getScheme() != "redis" && uri.getScheme() != "rediss")
        c.fail("url", "expected redis://HOST:PORT/DB or rediss://HOST:PORT/DB, got '" + url + "'");
    if (!uri.getUserInfo().empty())
        c.fail("url", "put the user in username and the password in password (a ${...} reference), not in the URL");
    e.tls = uri.getScheme() == "rediss";
    e.host = uri.getHost();
    if (e.host.empty()) c.fail("url", "no host in '" + url + "'");
    e.port = uri.getPort() ? uri.getPort() : 6379;
    std::string path = uri.getPath();
    if (!path.empty() && path != "/") {
        std::string_view digits = std::string_view(path).substr(1);
        auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), e.db);
        if (ec != std::errc() || end != digits.data() + digits.size() || e.db < 0)
            c.fail("url", "the path must be a database number (/0, /1 ...), got '" + path + "'");
    }
    e.username = c.string("username");
    e.password = c.string("password");
    if (!e.username.empty() && e.password.empty()) c.fail("username", "a username needs a password");
    e.timeout = std::chrono::milliseconds(c.integer("connect_timeout_ms", 5000));
    e.tls_verify = c.boolean("tls_verify", true);
    e.ca_file = c.string("ca_file");
    if (!e.ca_file.empty()) e.ca_file = ctx.resolve_path(e.ca_file);
    if (!e.tls && !e.ca_file.empty()) c.fail("ca_file", "only used with a rediss:// url");
    return e;
}

void CommandBuffer::begin(size_t arg_count) {
    bytes_ += '*';
    bytes_ += std::to_string(arg_count);
    bytes_ += "\r\n";
    ++commands_;
}

void CommandBuffer::arg(std::string_view a) {
    bytes_ += '$';
    bytes_ += std::to_string(a.size());
    bytes_ += "\r\n";
    bytes_.append(a);
    bytes_ += "\r\n";
}

void CommandBuffer::add(std::initializer_list<std::string_view> args) {
    begin(args.size());
    for (std::string_view a : args) arg(a);
}

namespace {

Poco::Timespan span(std::chrono::milliseconds ms) { return Poco::Timespan(Poco::Timespan::TimeDiff(ms.count()) * 1000); }

} // namespace

Connection::Connection(const Endpoint &endpoint) : endpoint_(endpoint), buffer_(64 * 1024) {
    const std::string where = endpoint_.display();
    try {
        Poco::Net::SocketAddress address(endpoint_.host, Poco::UInt16(endpoint_.port));
        if (endpoint_.tls) {
            Poco::Net::Context::Ptr context = new Poco::Net::Context(
                Poco::Net::Context::TLS_CLIENT_USE, "", "", endpoint_.ca_file,
                endpoint_.tls_verify ? Poco::Net::Context::VERIFY_RELAXED : Poco::Net::Context::VERIFY_NONE, 9,
                true);
            auto secure = std::make_unique<Poco::Net::SecureStreamSocket>(context);
            secure->setPeerHostName(endpoint_.host);
            secure->connect(address, span(endpoint_.timeout));
            secure->completeHandshake();
            socket_ = std::move(secure);
        } else {
            socket_ = std::make_unique<Poco::Net::StreamSocket>();
            socket_->connect(address, span(endpoint_.timeout));
        }
        socket_->setNoDelay(true);
        socket_->setSendTimeout(span(endpoint_.timeout));
    } catch (const Poco::Exception &e) {
        throw EnvironmentError("cannot connect to " + where + ": " + e.displayText());
    }
    reader_ = redisReaderCreate();
    if (!reader_) throw EnvironmentError("out of memory");
    CommandBuffer hello;
    if (!endpoint_.password.empty()) {
        if (endpoint_.username.empty()) hello.add({"AUTH", endpoint_.password});
        else hello.add({"AUTH", endpoint_.username, endpoint_.password});
    }
    if (endpoint_.db != 0) hello.add({"SELECT", std::to_string(endpoint_.db)});
    if (hello.commands() == 0) return;
    for (const Reply &r : run(hello)) {
        // A refused password is not something a retry fixes, but it is not
        // a record's fault either: the stage fails after its retries.
        if (is_error(r.get())) throw EnvironmentError(where + " refused the connection: " + std::string(text(r.get())));
    }
}

Connection::~Connection() {
    if (reader_) redisReaderFree(reader_);
    if (socket_) {
        try {
            socket_->close();
        } catch (...) {
        }
    }
}

void Connection::lost(const std::string &what) {
    broken_ = true;
    throw EnvironmentError("connection to " + endpoint_.display() + " lost: " + what);
}

std::vector<Reply> Connection::run(const CommandBuffer &commands, std::chrono::milliseconds extra_wait) {
    if (broken_) lost("used after an earlier failure");
    std::vector<Reply> replies;
    replies.reserve(commands.commands());
    try {
        const std::string &bytes = commands.bytes();
        for (size_t sent = 0; sent < bytes.size();) {
            int n = socket_->sendBytes(bytes.data() + sent, int(std::min<size_t>(bytes.size() - sent, 1 << 20)));
            if (n <= 0) lost("the server closed the connection");
            sent += size_t(n);
        }
        socket_->setReceiveTimeout(span(endpoint_.timeout + extra_wait));
        while (replies.size() < commands.commands()) {
            void *reply = nullptr;
            if (redisReaderGetReply(reader_, &reply) != REDIS_OK) lost(std::string("protocol error: ") + reader_->errstr);
            if (reply) {
                replies.emplace_back(static_cast<redisReply *>(reply));
                continue;
            }
            int n = socket_->receiveBytes(buffer_.data(), int(buffer_.size()));
            if (n <= 0) lost("the server closed the connection");
            if (redisReaderFeed(reader_, buffer_.data(), size_t(n)) != REDIS_OK)
                lost(std::string("protocol error: ") + reader_->errstr);
        }
    } catch (const Poco::TimeoutException &) {
        lost("no reply within " + std::to_string((endpoint_.timeout + extra_wait).count()) + " ms");
    } catch (const Poco::Exception &e) {
        lost(e.displayText());
    }
    return replies;
}

std::vector<std::string> stream_preflight(const Endpoint &endpoint, const std::string &stream) {
    try {
        Connection conn(endpoint);
        Reply type = conn.run_one({"TYPE", stream});
        if (!is_error(type.get()) && text(type.get()) != "stream" && text(type.get()) != "none")
            return {"stream: key " + stream + " holds a " + std::string(text(type.get())) + ", not a stream"};
    } catch (const std::exception &e) {
        return {"url: " + std::string(e.what())};
    }
    return {};
}

Reply Connection::run_one(std::initializer_list<std::string_view> args, std::chrono::milliseconds extra_wait) {
    CommandBuffer b;
    b.add(args);
    return std::move(run(b, extra_wait).front());
}

} // namespace sluice::plugins::redis
