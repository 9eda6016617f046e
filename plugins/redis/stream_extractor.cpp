#include "stream_extractor.hpp"

#include <sluice/json.hpp>

#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <unordered_set>

namespace sluice::plugins::redis {

namespace {

std::string default_consumer() {
    if (const char *instance = std::getenv("SLUICE_INSTANCE"); instance && *instance) return instance;
    char host[256] = {};
    if (::gethostname(host, sizeof host - 1) != 0) std::strcpy(host, "sluice");
    return std::string(host) + "-" + std::to_string(::getpid());
}

// [[id, [field, value, ...] | nil], ...] -> entries (pointing into `list`).
void read_entries(const redisReply *list, std::vector<std::pair<std::string, const redisReply *>> &out) {
    if (!list || list->type != REDIS_REPLY_ARRAY) return;
    for (size_t i = 0; i < list->elements; ++i) {
        const redisReply *e = list->element[i];
        if (!e || e->type != REDIS_REPLY_ARRAY || e->elements < 2) continue;
        const redisReply *fields = e->element[1];
        out.emplace_back(std::string(text(e->element[0])),
                         fields && fields->type == REDIS_REPLY_ARRAY ? fields : nullptr);
    }
}

[[noreturn]] void server_refused(const std::string &what, const redisReply *r) {
    // A missing group (deleted while running) or a server that cannot
    // answer: the host retries, and a reconnect creates the group again.
    throw EnvironmentError(what + ": " + std::string(r ? text(r) : "no reply"));
}

} // namespace

config::Spec StreamExtractor::config_spec() {
    using config::Field;
    return config::Spec{
        Field::string("stream", "The stream's key").required().not_empty(),
        Field::string("group", "The consumer group; every worker of one pipeline uses the same").required().not_empty(),
        Field::string("consumer", "This consumer's name, unique among the group's live members and the same after "
                                  "a restart (its pending entries are read again first); default: "
                                  "$SLUICE_INSTANCE (the systemd instance), else HOSTNAME-PID. With threads > 1, "
                                  "-N is added per thread")
            .default_to(""),
        Field::string("start_id", "Where a group created by this stage starts: 0 (the whole stream) or $ (only "
                                  "entries added from now on) or an entry id")
            .not_empty()
            .default_to("0"),
        Field::boolean("create_group", "Create the group (and the stream) when missing").default_to(true),
        Field::choice("format", {"body", "fields"},
                      "body: the payload is the entry's body_field, the other fields become attributes; fields: "
                      "the payload is a JSON object of all the entry's fields (values as strings)")
            .default_to("body"),
        Field::string("body_field", "format body: the field holding the payload").not_empty().default_to("body"),
        Field::string("content_type", "Content type of the records; application/json payloads are checked "
                                      "and an entry that is not JSON goes to the error path")
            .not_empty()
            .default_to(SLUICE_CONTENT_JSON),
        Field::integer("block_ms", "How long one read waits for new entries (also how soon a stop is noticed)")
            .minimum(1)
            .maximum(60000)
            .default_to(500),
        Field::integer("claim_idle_ms", "Entries pending this long with any consumer (one that died, or this one "
                                        "after a lost reply) are claimed and processed here; longer than the time "
                                        "an entry takes through the pipeline. 0: never claim")
            .minimum(0)
            .default_to(30000),
        Field::integer("claim_interval_ms", "How often to look for entries to claim").minimum(1).default_to(1000),
        Field::integer("max_deliveries", "An entry delivered more often than this (claimed again and again: it "
                                         "kills or stalls its consumers) goes to the error path with the reason; "
                                         "0: no limit")
            .minimum(0)
            .default_to(5),
    }
        .include(endpoint_spec());
}

StreamExtractor::StreamExtractor(const Context &ctx) : host_(ctx.host) {
    json::Config c(ctx.config_json);
    endpoint_ = Endpoint::read(c, ctx);
    stream_ = c.required_string("stream");
    group_ = c.required_string("group");
    consumer_ = c.string("consumer");
    if (consumer_.empty()) consumer_ = default_consumer();
    if (ctx.worker_count > 1) consumer_ += "-" + std::to_string(ctx.worker_index + 1);
    start_id_ = c.string("start_id", "0");
    create_group_ = c.boolean("create_group", true);
    whole_entry_ = c.string("format", "body") == "fields";
    body_field_ = c.string("body_field", "body");
    content_type_ = c.string("content_type", SLUICE_CONTENT_JSON);
    block_ = std::chrono::milliseconds(c.integer("block_ms", 500));
    claim_idle_ = std::chrono::milliseconds(c.integer("claim_idle_ms", 30000));
    claim_interval_ = std::chrono::milliseconds(c.integer("claim_interval_ms", 1000));
    max_deliveries_ = c.integer("max_deliveries", 5);
    source_ = endpoint_.display() + "/" + stream_;
}

void StreamExtractor::connect() {
    conn_ = std::make_unique<Connection>(endpoint_);
    if (!create_group_) return;
    Reply r = conn_->run_one({"XGROUP", "CREATE", stream_, group_, start_id_, "MKSTREAM"});
    if (is_error(r.get()) && text(r.get()).substr(0, 9) != "BUSYGROUP") {
        std::string what = "cannot create group " + group_ + " on " + source_;
        conn_.reset();
        server_refused(what, r.get());
    }
    if (!is_error(r.get())) host_.info("created consumer group " + group_ + " on " + source_ + " at " + start_id_);
}

void StreamExtractor::start() {
    connect();
    host_.info("reading " + source_ + " as consumer " + consumer_ + " of group " + group_);
}

std::vector<std::string> StreamExtractor::take_acks(CommandBuffer &commands) {
    std::vector<std::string> ids;
    {
        std::lock_guard lock(mutex_);
        ids.swap(to_ack_);
    }
    if (ids.empty()) return ids;
    commands.begin(3 + ids.size());
    commands.arg("XACK");
    commands.arg(stream_);
    commands.arg(group_);
    for (const std::string &id : ids) commands.arg(id);
    return ids;
}

void StreamExtractor::give_back(std::vector<std::string> ids) {
    std::lock_guard lock(mutex_);
    to_ack_.insert(to_ack_.end(), std::make_move_iterator(ids.begin()), std::make_move_iterator(ids.end()));
}

void StreamExtractor::acknowledged(std::string_view position) {
    uint64_t n = 0;
    auto [end, ec] = std::from_chars(position.data(), position.data() + position.size(), n);
    if (ec != std::errc() || end != position.data() + position.size()) return;
    std::lock_guard lock(mutex_);
    while (!in_flight_.empty() && in_flight_.front().first <= n) {
        auto &ids = in_flight_.front().second;
        to_ack_.insert(to_ack_.end(), std::make_move_iterator(ids.begin()), std::make_move_iterator(ids.end()));
        in_flight_.pop_front();
    }
}

std::vector<std::pair<std::string, int64_t>> StreamExtractor::delivery_counts(const std::string &first,
                                                                              const std::string &last, size_t count) {
    Reply r = conn_->run_one({"XPENDING", stream_, group_, first, last, std::to_string(count), consumer_});
    if (is_error(r.get())) server_refused("XPENDING on " + source_, r.get());
    std::vector<std::pair<std::string, int64_t>> counts;
    for (size_t i = 0; i < r->elements; ++i) {
        const redisReply *e = r->element[i];
        if (e->type == REDIS_REPLY_ARRAY && e->elements >= 4)
            counts.emplace_back(std::string(text(e->element[0])), e->element[3]->integer);
    }
    return counts;
}

bool StreamExtractor::pull(Emitter &out, uint32_t max_records) {
    if (!conn_ || conn_->broken()) connect();
    const std::string count = std::to_string(std::max<uint32_t>(max_records, 1));
    CommandBuffer commands;
    std::vector<std::string> acking = take_acks(commands);
    enum class Read { own_pending, claim, fresh } read;
    const auto now = std::chrono::steady_clock::now();
    if (reading_own_pending_) {
        read = Read::own_pending;
        commands.add({"XREADGROUP", "GROUP", group_, consumer_, "COUNT", count, "STREAMS", stream_,
                      own_pending_cursor_});
    } else if (claim_idle_.count() > 0 && now >= next_claim_) {
        read = Read::claim;
        next_claim_ = now + claim_interval_;
        commands.add({"XAUTOCLAIM", stream_, group_, consumer_, std::to_string(claim_idle_.count()), claim_cursor_,
                      "COUNT", count});
    } else {
        read = Read::fresh;
        commands.add({"XREADGROUP", "GROUP", group_, consumer_, "COUNT", count, "BLOCK",
                      std::to_string(block_.count()), "STREAMS", stream_, ">"});
    }
    std::vector<Reply> replies;
    try {
        replies = conn_->run(commands, read == Read::fresh ? block_ : std::chrono::milliseconds(0));
    } catch (...) {
        give_back(std::move(acking));
        throw;
    }
    if (!acking.empty()) {
        // A refused XACK is tried again with the next command; the entries
        // just read are handled all the same (left unread, they would wait
        // for a claim).
        if (is_error(replies.front().get())) {
            host_.warn("XACK on " + source_ + " refused (tried again): " + std::string(text(replies.front().get())));
            give_back(std::move(acking));
        } else {
            host_.counter("acknowledged", replies.front()->integer);
        }
    }
    const redisReply *reply = replies.back().get();
    if (is_error(reply)) {
        if (text(reply).substr(0, 7) == "NOGROUP") conn_.reset(); // created again on reconnect
        server_refused((read == Read::claim ? "XAUTOCLAIM on " : "XREADGROUP on ") + source_, reply);
    }
    std::vector<std::pair<std::string, const redisReply *>> entries;
    if (read == Read::claim) {
        // [next cursor, entries, deleted ids]: "0-0" once the scan is done.
        if (reply->type == REDIS_REPLY_ARRAY && reply->elements >= 2) {
            claim_cursor_ = std::string(text(reply->element[0]));
            read_entries(reply->element[1], entries);
            if (reply->elements >= 3 && reply->element[2]->elements > 0)
                host_.counter("deleted", int64_t(reply->element[2]->elements));
        }
        if (claim_cursor_ != "0-0") next_claim_ = now; // more to scan: go on next pull
    } else if (reply->type == REDIS_REPLY_ARRAY && reply->elements > 0) {
        // [[stream, entries]]; nil when BLOCK timed out.
        const redisReply *s = reply->element[0];
        if (s->type == REDIS_REPLY_ARRAY && s->elements >= 2) read_entries(s->element[1], entries);
    }
    if (read == Read::own_pending) {
        if (entries.empty()) {
            reading_own_pending_ = false;
        } else {
            own_pending_cursor_ = entries.back().first;
            host_.counter("redelivered", int64_t(entries.size()));
        }
    }
    if (read == Read::claim && !entries.empty()) {
        // Entries of our own still in the pipeline (a slow stage) are not
        // emitted twice; claiming them only reset their idle time.
        std::unordered_set<std::string_view> claimed;
        for (const auto &e : entries) claimed.insert(e.first);
        std::unordered_set<std::string> ours;
        {
            std::lock_guard lock(mutex_);
            for (const auto &[n, ids] : in_flight_)
                for (const std::string &id : ids)
                    if (claimed.count(id)) ours.insert(id);
        }
        if (!ours.empty())
            entries.erase(std::remove_if(entries.begin(), entries.end(),
                                         [&](const auto &e) { return ours.count(e.first) > 0; }),
                          entries.end());
        host_.counter("claimed", int64_t(entries.size()));
        if (!entries.empty())
            host_.info("claimed " + std::to_string(entries.size()) + " entries pending longer than " +
                       std::to_string(claim_idle_.count()) + " ms");
    }
    if (entries.empty()) return false;

    // Entries read again (ours after a restart, or claimed) have a delivery
    // count; past max_deliveries they are dead-lettered.
    std::unordered_set<std::string> over_limit;
    std::vector<std::pair<std::string, int64_t>> counts;
    if (read != Read::fresh && max_deliveries_ > 0) {
        counts = delivery_counts(entries.front().first, entries.back().first, entries.size());
        for (const auto &[id, n] : counts)
            if (n > max_deliveries_) over_limit.insert(id);
    }
    std::vector<std::string> ids;
    ids.reserve(entries.size());
    std::vector<std::string> deleted;
    for (const auto &[id, fields] : entries) {
        if (!fields) {
            // Trimmed from the stream while pending: nothing left to read.
            deleted.push_back(id);
            continue;
        }
        std::vector<sluice_attr> attrs{attr(SLUICE_ATTR_SOURCE, source_), attr("redis_id", id)};
        const redisReply *body = nullptr;
        for (size_t i = 0; i + 1 < fields->elements; i += 2) {
            std::string_view f = text(fields->element[i]);
            if (!whole_entry_ && f == body_field_) body = fields->element[i + 1];
            else if (!whole_entry_ && f != SLUICE_ATTR_SOURCE && f != "redis_id")
                attrs.push_back(attr(f, text(fields->element[i + 1])));
        }
        ids.push_back(id);
        if (whole_entry_) {
            payload_.assign("{");
            for (size_t i = 0; i + 1 < fields->elements; i += 2) {
                if (i) payload_ += ',';
                json::append_string(payload_, text(fields->element[i]));
                payload_ += ':';
                json::append_string(payload_, text(fields->element[i + 1]));
            }
            payload_ += '}';
        }
        std::string_view payload = whole_entry_ ? std::string_view(payload_) : text(body);
        if (over_limit.count(id)) {
            int64_t n = 0;
            for (const auto &[cid, cn] : counts)
                if (cid == id) n = cn;
            out.emit_failed(payload,
                            "entry " + id + " of " + source_ + " was delivered " + std::to_string(n) +
                                " times (max_deliveries " + std::to_string(max_deliveries_) + ")",
                            {attrs.data()[0], attrs.data()[1]}, content_type_.c_str());
            host_.counter("dead_lettered", 1);
            continue;
        }
        if (!whole_entry_ && !body) {
            std::string names;
            for (size_t i = 0; i < fields->elements; i += 2)
                names += std::string(names.empty() ? "" : ", ") + std::string(text(fields->element[i]));
            out.emit_failed(names, "entry " + id + " of " + source_ + " has no field '" + body_field_ +
                                       "' (fields: " + names + ")",
                            {attrs.data()[0], attrs.data()[1]});
            continue;
        }
        if (content_type_ == SLUICE_CONTENT_JSON) {
            std::string error;
            if (!parser_.parse(payload, error)) {
                out.emit_failed(payload, "entry " + id + " of " + source_ + ": invalid JSON (" + error + ")",
                                {attrs.data()[0], attrs.data()[1]});
                continue;
            }
        }
        out.emit(0, SLUICE_NO_INPUT, payload, content_type_.c_str(), attrs.data(), uint32_t(attrs.size()));
    }
    if (!deleted.empty()) {
        host_.counter("deleted", int64_t(deleted.size()));
        give_back(std::move(deleted)); // acknowledged with the next command
    }
    if (!ids.empty()) {
        std::lock_guard lock(mutex_);
        in_flight_.emplace_back(++pulls_made_, std::move(ids));
    }
    return false; // a stream has no end
}

void StreamExtractor::stop() {
    // What the pipeline delivered is acknowledged before leaving; the rest
    // stays pending.
    bool anything = false;
    {
        std::lock_guard lock(mutex_);
        anything = !to_ack_.empty();
    }
    if (anything) {
        try {
            if (!conn_ || conn_->broken()) conn_ = std::make_unique<Connection>(endpoint_);
            CommandBuffer commands;
            take_acks(commands);
            std::vector<Reply> r = conn_->run(commands);
            if (!is_error(r.front().get())) host_.counter("acknowledged", r.front()->integer);
        } catch (const std::exception &e) {
            host_.warn(std::string("could not acknowledge the last entries (they stay pending): ") + e.what());
        }
    }
    size_t pending = 0;
    {
        std::lock_guard lock(mutex_);
        for (const auto &p : in_flight_) pending += p.second.size();
    }
    if (pending) host_.info(std::to_string(pending) + " entries not delivered stay pending in group " + group_);
    conn_.reset();
}

const void *StreamExtractor::extension(const char *id) const {
    static const sluice_metric metrics[] = {
        {"acknowledged", SLUICE_METRIC_COUNTER, 0, "entries", "entries XACKed once the pipeline delivered them"},
        {"redelivered", SLUICE_METRIC_COUNTER, 0, "entries",
         "entries this consumer had left pending (an earlier run that stopped or died), read again at start"},
        {"claimed", SLUICE_METRIC_COUNTER, 0, "entries",
         "entries claimed from consumers that left them pending longer than claim_idle_ms"},
        {"dead_lettered", SLUICE_METRIC_COUNTER, 0, "entries", "entries delivered more than max_deliveries times"},
        {"deleted", SLUICE_METRIC_COUNTER, 0, "entries", "pending entries trimmed from the stream before delivery"},
    };
    static const sluice_metrics_ext ext = {sizeof(sluice_metrics_ext), 5, metrics, 0, 0, nullptr,
                                           "acknowledged {acknowledged}, redelivered {redelivered}, claimed {claimed}, dead-lettered {dead_lettered}"};
    return id && std::strcmp(id, SLUICE_EXT_METRICS) == 0 ? &ext : nullptr;
}

} // namespace sluice::plugins::redis
