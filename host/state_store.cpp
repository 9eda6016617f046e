#include "state_store.hpp"

#include <sluice/utc_time.hpp>

#include <spdlog/spdlog.h>

#include <cctype>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <sys/file.h>
#include <unistd.h>

namespace sluice {

namespace fs = std::filesystem;
namespace bj = boost::json;

namespace {

constexpr const char *kFormat = "sluice-state/1";

std::string file_name_for(const std::string &pipeline) {
    std::string name;
    for (char c : pipeline)
        name += (std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.') ? c : '_';
    if (name.empty() || name[0] == '.') name = "pipeline" + name;
    return name + ".state.json";
}

bool write_all(int fd, const std::string &text) {
    const char *p = text.data();
    size_t left = text.size();
    while (left > 0) {
        ssize_t n = ::write(fd, p, left);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return false;
        p += n;
        left -= size_t(n);
    }
    return true;
}

} // namespace

StateStore::StateStore(const std::string &dir, const std::string &pipeline) {
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec) throw StateError("state_dir " + dir + ": cannot create it: " + ec.message());
    path_ = (fs::path(dir) / file_name_for(pipeline)).string();
    lock_path_ = path_ + ".lock";
    lock_fd_ = ::open(lock_path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (lock_fd_ < 0) throw StateError(lock_path_ + ": cannot open the state lock: " + std::strerror(errno));
    if (::flock(lock_fd_, LOCK_EX | LOCK_NB) != 0) {
        ::close(lock_fd_);
        lock_fd_ = -1;
        throw StateError(path_ + ": in use by another sluice run (it holds " + lock_path_ + ")");
    }
    // Leftover temp file of a save that was interrupted: the rename never
    // happened, so the state file itself is intact.
    fs::remove(path_ + ".tmp", ec);
    try {
        load();
    } catch (...) {
        ::close(lock_fd_); // no destructor runs for a constructor that throws
        lock_fd_ = -1;
        throw;
    }
}

void StateStore::load() {
    std::error_code ec;
    std::ifstream in(path_, std::ios::binary);
    if (!in) {
        if (fs::exists(path_, ec)) throw StateError(path_ + ": cannot read the state file");
        return; // first run
    }
    std::stringstream text;
    text << in.rdbuf();
    const std::string s = text.str();
    boost::system::error_code jec;
    bj::value root = bj::parse(s, jec);
    if (jec) throw StateError(path_ + ": not a valid state file (" + jec.message() + "); move it away to start afresh");
    const bj::object *o = root.if_object();
    const bj::value *format = o ? o->if_contains("format") : nullptr;
    if (!format || !format->is_string() || format->get_string() != kFormat)
        throw StateError(path_ + ": not a " + std::string(kFormat) + " state file; move it away to start afresh");
    const bj::value *stages = o->if_contains("stages");
    if (!stages || !stages->is_object()) throw StateError(path_ + ": /stages: expected an object");
    saved_stages_ = stages->get_object();
    for (const auto &kv : saved_stages_) {
        const std::string where = path_ + ": /stages/" + std::string(kv.key());
        const bj::object *st = kv.value().if_object();
        const bj::value *workers = st ? st->if_contains("workers") : nullptr;
        const bj::value *plugin = st ? st->if_contains("plugin") : nullptr;
        if (!workers || !workers->is_array() || !plugin || !plugin->is_string())
            throw StateError(where + ": expected {\"plugin\": ..., \"workers\": [...]}");
        for (const bj::value &w : workers->get_array()) {
            const bj::object *wo = w.if_object();
            const bj::value *pos = wo ? wo->if_contains("position") : nullptr;
            if (!pos || !(pos->is_string() || pos->is_null()))
                throw StateError(where + "/workers: each worker needs a \"position\" (a string or null)");
        }
    }
}

StateStore::~StateStore() {
    {
        std::lock_guard lock(mutex_);
        stopping_ = true;
    }
    wake_.notify_all();
    if (writer_.joinable()) writer_.join();
    if (lock_fd_ >= 0) ::close(lock_fd_); // releases the flock
}

std::optional<StateStore::SavedStage> StateStore::saved(const std::string &stage) const {
    const bj::value *v = saved_stages_.if_contains(stage);
    if (!v) return std::nullopt;
    const bj::object &st = v->get_object();
    SavedStage out;
    out.plugin = std::string(st.at("plugin").get_string());
    for (const bj::value &w : st.at("workers").get_array()) {
        const bj::object &wo = w.get_object();
        const bj::value &pos = wo.at("position");
        out.positions.push_back(pos.is_string() ? std::string(pos.get_string()) : std::string());
        const bj::value *pulls = wo.if_contains("pulls");
        out.pulls.push_back(pulls && pulls->is_int64() && pulls->get_int64() > 0 ? uint64_t(pulls->get_int64()) : 0);
        if (const bj::value *u = wo.if_contains("unacknowledged"); u && u->is_int64() && u->get_int64() > 0)
            out.unacknowledged += uint64_t(u->get_int64());
    }
    if (const bj::value *b = st.if_contains("batch_size"); b && b->is_int64() && b->get_int64() > 0)
        out.batch_size = uint32_t(b->get_int64());
    return out;
}

void StateStore::track(const std::string &stage, const std::string &plugin, uint32_t batch_size,
                       std::vector<std::shared_ptr<AckTracker>> workers) {
    for (const auto &w : workers)
        w->on_progress([this] {
            {
                std::lock_guard lock(mutex_);
                dirty_ = true;
            }
            wake_.notify_all();
        });
    tracked_[stage] = Tracked{plugin, batch_size, std::move(workers)};
}

void StateStore::start(std::chrono::milliseconds min_interval) {
    if (tracked_.empty()) return;
    writer_ = std::thread([this, min_interval] { writer_loop(min_interval); });
}

void StateStore::writer_loop(std::chrono::milliseconds min_interval) {
    std::unique_lock lock(mutex_);
    while (!stopping_) {
        // A timeout too, in case a save failed and must be tried again.
        wake_.wait_for(lock, std::chrono::seconds(1), [&] { return stopping_ || dirty_; });
        if (stopping_) break;
        dirty_ = false;
        lock.unlock();
        std::string problem = save(false);
        if (!problem.empty()) spdlog::warn("{}", problem); // tried again next time
        lock.lock();
        if (min_interval.count() > 0) wake_.wait_for(lock, min_interval, [&] { return stopping_; });
    }
}

std::string StateStore::finish() {
    {
        std::lock_guard lock(mutex_);
        stopping_ = true;
    }
    wake_.notify_all();
    if (writer_.joinable()) writer_.join();
    if (tracked_.empty()) return {};
    return save(true);
}

std::string StateStore::save(bool force) {
    std::lock_guard guard(save_mutex_);
    uint64_t version = 0;
    for (const auto &[id, t] : tracked_)
        for (const auto &w : t.workers) version += w->version();
    if (!force && version == written_version_) return {};

    bj::object stages = saved_stages_;
    for (const auto &[id, t] : tracked_) {
        bj::array workers;
        for (const auto &w : t.workers) {
            AckTracker::Snapshot s = w->snapshot();
            bj::object wo;
            wo["position"] = s.position ? bj::value(*s.position) : bj::value(nullptr);
            wo["pulls"] = s.pulls;
            wo["acknowledged"] = s.acknowledged;
            wo["unacknowledged"] = s.unacknowledged;
            workers.push_back(std::move(wo));
        }
        stages[id] = bj::object{{"plugin", t.plugin}, {"batch_size", t.batch_size}, {"workers", std::move(workers)}};
    }
    // The positions are read; now what they count on is made durable
    // (anything acknowledged after this point is not in this save).
    if (before_save_ && !before_save_())
        return path_ + ": not saved this time: a loader could not make its delivery markers durable";
    // Saved even once the run has aborted: trackers ignore every token
    // completed after the abort flag is set (batches dropped unloaded), so
    // the snapshot is what was really delivered, and a failed run keeps it.
    bj::object root{{"format", kFormat}, {"saved_at", utc_now()}, {"stages", std::move(stages)}};
    std::string text = bj::serialize(root) + "\n";

    const std::string tmp = path_ + ".tmp";
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return tmp + ": cannot write the state: " + std::strerror(errno);
    bool ok = write_all(fd, text) && ::fsync(fd) == 0;
    int err = errno;
    ::close(fd);
    if (!ok || ::rename(tmp.c_str(), path_.c_str()) != 0) {
        if (ok) err = errno;
        ::unlink(tmp.c_str());
        return path_ + ": cannot save the state: " + std::strerror(err);
    }
    // The last save's rename must survive a crash. An earlier one lost to a
    // crash only leaves an older state, which is safe (more is read again),
    // so saves while running spare themselves the directory sync.
    if (force) {
        fs::path dir = fs::path(path_).parent_path();
        int dfd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd >= 0) {
            ::fsync(dfd);
            ::close(dfd);
        }
    }
    written_version_ = version;
    return {};
}

uint64_t StateStore::acknowledged() const {
    uint64_t n = 0;
    for (const auto &[id, t] : tracked_)
        for (const auto &w : t.workers) n += w->snapshot().acknowledged;
    return n;
}

uint64_t StateStore::unacknowledged() const {
    uint64_t n = 0;
    for (const auto &[id, t] : tracked_)
        for (const auto &w : t.workers) n += w->snapshot().unacknowledged;
    return n;
}

} // namespace sluice
