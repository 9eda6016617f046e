#include "redis_server.hpp"

#include "free_port.hpp"

#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <thread>

namespace sluice::test {

namespace {

constexpr const char *kServer = "/usr/bin/redis-server";

} // namespace

bool RedisServer::available() { return ::access(kServer, X_OK) == 0; }

void RedisServer::make_certificates() {
    const std::string d = dir_;
    std::ofstream(d + "/san.cnf") << "subjectAltName=DNS:localhost,IP:127.0.0.1\n";
    std::string cmd = "cd " + d +
                      " && openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=sluice-test-ca -keyout "
                      "ca.key -out ca.pem"
                      " && openssl req -newkey rsa:2048 -nodes -subj /CN=localhost -keyout server.key -out server.csr"
                      " && openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 "
                      "-extfile san.cnf -out server.pem";
    if (std::system(("(" + cmd + ") > " + d + "/certs.log 2>&1").c_str()) != 0)
        throw std::runtime_error("openssl could not make the test certificates (see " + d + "/certs.log)");
}

RedisServer::RedisServer(RedisOptions options) : options_(std::move(options)) {
    std::string tmpl = (std::filesystem::temp_directory_path() / "sluice-redis-XXXXXX").string();
    if (!mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
    dir_ = tmpl;
    port_ = free_loopback_port();
    std::vector<std::string> args{kServer, "--port", std::to_string(port_), "--bind", "127.0.0.1",
                                  "--save", "", "--appendonly", "no", "--dir", dir_,
                                  "--logfile", dir_ + "/redis.log", "--daemonize", "no"};
    if (!options_.password.empty()) args.insert(args.end(), {"--requirepass", options_.password});
    if (!options_.maxmemory.empty())
        args.insert(args.end(), {"--maxmemory", options_.maxmemory, "--maxmemory-policy", "noeviction"});
    if (options_.tls) {
        make_certificates();
        tls_port_ = free_loopback_port();
        args.insert(args.end(), {"--tls-port", std::to_string(tls_port_), "--tls-cert-file", dir_ + "/server.pem",
                                 "--tls-key-file", dir_ + "/server.key", "--tls-ca-cert-file", dir_ + "/ca.pem",
                                 "--tls-auth-clients", "no"});
    }
    pid_ = ::fork();
    if (pid_ == 0) {
        // Dies with the test, even one that crashes before its destructor.
        ::prctl(PR_SET_PDEATHSIG, SIGKILL);
        std::vector<char *> argv;
        for (std::string &a : args) argv.push_back(a.data());
        argv.push_back(nullptr);
        ::execv(kServer, argv.data());
        ::_exit(127);
    }
    if (pid_ < 0) throw std::runtime_error("fork failed");
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (std::chrono::steady_clock::now() < deadline) {
        timeval tv{1, 0};
        client_ = redisConnectWithTimeout("127.0.0.1", port_, tv);
        if (client_ && !client_->err) break;
        if (client_) redisFree(client_);
        client_ = nullptr;
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    if (!client_) throw std::runtime_error("redis-server did not start (see " + dir_ + "/redis.log)");
    if (!options_.password.empty()) command({"AUTH", options_.password});
}

RedisServer::~RedisServer() {
    if (client_) redisFree(client_);
    if (pid_ > 0) {
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, nullptr, 0);
    }
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
}

RedisReply RedisServer::command(const std::vector<std::string> &args) {
    std::vector<const char *> argv;
    std::vector<size_t> lens;
    for (const std::string &a : args) {
        argv.push_back(a.data());
        lens.push_back(a.size());
    }
    auto *r = static_cast<redisReply *>(redisCommandArgv(client_, int(argv.size()), argv.data(), lens.data()));
    if (!r) throw std::runtime_error(std::string("redis: ") + client_->errstr);
    return RedisReply(r);
}

long long RedisServer::integer(const std::vector<std::string> &args) {
    RedisReply r = command(args);
    if (r->type != REDIS_REPLY_INTEGER) throw std::runtime_error("redis " + args[0] + ": " + std::string(r->str ? r->str : "not an integer"));
    return r->integer;
}

std::string RedisServer::text(const std::vector<std::string> &args) {
    RedisReply r = command(args);
    return r->str ? std::string(r->str, r->len) : std::string();
}

void RedisServer::add_entries(const std::string &stream, const std::vector<std::string> &payloads) {
    constexpr size_t kChunk = 5000;
    for (size_t at = 0; at < payloads.size(); at += kChunk) {
        size_t end = std::min(payloads.size(), at + kChunk);
        for (size_t i = at; i < end; ++i) {
            const char *argv[] = {"XADD", stream.c_str(), "*", "body", payloads[i].c_str()};
            size_t lens[] = {4, stream.size(), 1, 4, payloads[i].size()};
            redisAppendCommandArgv(client_, 5, argv, lens);
        }
        for (size_t i = at; i < end; ++i) {
            void *r = nullptr;
            if (redisGetReply(client_, &r) != REDIS_OK) throw std::runtime_error(std::string("redis: ") + client_->errstr);
            RedisReply reply(static_cast<redisReply *>(r));
            if (reply->type == REDIS_REPLY_ERROR) throw std::runtime_error("XADD: " + std::string(reply->str));
        }
    }
}

std::vector<std::string> RedisServer::pending_ids(const std::string &stream, const std::string &group,
                                                  const std::string &consumer) {
    std::vector<std::string> args{"XPENDING", stream, group, "-", "+", "100000000"};
    if (!consumer.empty()) args.push_back(consumer);
    RedisReply r = command(args);
    std::vector<std::string> ids;
    if (r->type != REDIS_REPLY_ARRAY) return ids;
    for (size_t i = 0; i < r->elements; ++i) ids.emplace_back(r->element[i]->element[0]->str);
    return ids;
}

long long RedisServer::group_info(const std::string &stream, const std::string &group, const std::string &field) {
    RedisReply r = command({"XINFO", "GROUPS", stream});
    if (r->type != REDIS_REPLY_ARRAY) return -1;
    for (size_t g = 0; g < r->elements; ++g) {
        const redisReply *info = r->element[g];
        bool this_group = false;
        long long value = -1;
        for (size_t i = 0; i + 1 < info->elements; i += 2) {
            std::string key(info->element[i]->str);
            const redisReply *v = info->element[i + 1];
            if (key == "name" && v->str && group == v->str) this_group = true;
            if (key == field) value = v->type == REDIS_REPLY_INTEGER ? v->integer : -1;
        }
        if (this_group) return value;
    }
    return -1;
}

} // namespace sluice::test
