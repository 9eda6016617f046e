// sluice/plugin.hpp - header-only C++20 helper over the C ABI in plugin.h.
//
// A stage is one class; a library exports its stages with one macro:
//
//   #include <sluice/plugin.hpp>
//
//   class Upper {
//   public:
//     static constexpr sluice_kind kind = SLUICE_KIND_TRANSFORMER;
//     static constexpr const char *name = "upper";
//     static constexpr const char *version = "1.0.0";
//     static constexpr const char *description = "upper-cases text records";
//     static sluice::config::Spec config_spec() {          // <sluice/config_spec.hpp>
//       return {sluice::config::Field::string("field", "Field to upper-case")
//                   .default_to("text")};
//     }
//
//     explicit Upper(const sluice::Context &ctx);          // parse config; throw on bad config
//     void process(sluice::Input in, sluice::Emitter &out); // one batch
//   };
//   SLUICE_PLUGIN(Upper)
//
// In process, say what became of every input: out.forward(i), out.replace /
// out.emit from it, out.reject(i, why), out.fail(i, why), or out.drop(i) for
// one filtered out on purpose. An input given none of these is sent down the
// error path as "the plugin did not account for this record" (plugin.h, 8).
//
// The config is declared once, in config_spec() (sluice/config_spec.hpp):
// the host checks the manifest against the schema made from it, and the
// constructor gets ctx.config_json with every default filled in. (A stage may
// instead give `static constexpr const char *config_schema` as JSON Schema
// text; then it gets the config as written and applies its own defaults.)
//
// Optional members, detected at compile time:
//   static constexpr uint64_t capabilities = SLUICE_CAP_...;
//   static constexpr std::array<const char *, N> outputs = {"pass", "fail"};
//   void start();                    // acquire resources
//   void flush(sluice::Emitter &);   // end of input
//   void stop();                     // release resources
//   const void *extension(const char *id);
//   const std::vector<std::string> &output_names() const;  // outputs chosen by
//                                    the config (a router); sets SLUICE_CAP_CONFIG_OUTPUTS
//   std::string checkpoint() const;  void restore(std::string_view position);
//                                    // extractors that can resume (sluice.checkpoint/1)
//   void acknowledged(std::string_view position); // [any thread] with checkpoint:
//                                    // everything up to position is delivered
//                                    // (sluice.acknowledged/1)
//   bool durable_on_process() const; // true if records are durable when process
//                                    // returns (sluice.delivery/1); without it,
//                                    // only after flush
//   void settle();                   // with durable_on_process: what process
//                                    // accepted is durable only once the next
//                                    // process returns or settle does; settle
//                                    // waits for it (sluice.settle/1: a commit
//                                    // overlapping the next call's writes)
//   std::vector<std::string> preflight() const; // problems found without
//                                    // changing anything, "field: what"
//                                    // (sluice.preflight/1)
//   std::string resources() const;   // what it reads and writes, as JSON
//                                    // (sluice.resources/1; sluice::Resources
//                                    // builds it)
//   std::string recover();           // loaders that store the host's marker
//   void process(Input, Emitter &, std::string_view marker);
//                                    // atomically with the records
//                                    // (sluice.exactly_once/1): exactly once
//   void sync_markers();             // [thread-safe] optional: markers made
//                                    // durable here, not in every process
// Extractors define `bool pull(sluice::Emitter &out, uint32_t max_records)`
// instead of process; it returns true at end of input.
//
// Exceptions never cross the boundary: sluice::EnvironmentError (and
// RetryError) become SLUICE_RETRY, sluice::FatalError SLUICE_FATAL, any other
// exception SLUICE_ERROR, each with its what() as the message.
#ifndef SLUICE_PLUGIN_HPP
#define SLUICE_PLUGIN_HPP

#include <sluice/plugin.h>

#include <array>
#include <concepts>
#include <cstdio>
#include <cstring>
#include <exception>
#include <initializer_list>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace sluice {

// --- errors ----------------------------------------------------------------

// The call failed (SLUICE_ERROR). Thrown from a constructor: the config is bad.
struct Error : std::runtime_error {
    using std::runtime_error::runtime_error;
};
// Transient failure; the host retries later (SLUICE_RETRY).
struct RetryError : std::runtime_error {
    using std::runtime_error::runtime_error;
};
// The destination or source cannot take anything (disk full, I/O error,
// connection lost, permission denied): not the records' fault. Undo what the
// call did, then throw this; the host tries the same input again with backoff
// and, if it keeps failing, fails the stage without skipping or
// acknowledging anything (plugin.h, section 7). Never report such a failure
// with Emitter::fail per record: the default policy would skip them.
struct EnvironmentError : RetryError {
    using RetryError::RetryError;
};
// The instance is unusable; the pipeline stops (SLUICE_FATAL).
struct FatalError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// --- host services -----------------------------------------------------------

class Host {
public:
    explicit Host(const sluice_host *host = nullptr) : host_(host) {}

    void log(sluice_log_level level, std::string_view message) const {
        if (host_ && host_->log) host_->log(host_, level, message.data(), message.size());
    }
    bool log_enabled(sluice_log_level level) const {
        return host_ && host_->log_enabled && host_->log_enabled(host_, level) != 0;
    }
    void debug(std::string_view m) const { log(SLUICE_LOG_DEBUG, m); }
    void info(std::string_view m) const { log(SLUICE_LOG_INFO, m); }
    void warn(std::string_view m) const { log(SLUICE_LOG_WARN, m); }
    void error(std::string_view m) const { log(SLUICE_LOG_ERROR, m); }

    // Adds to a stage counter shown in the run report. Call per batch.
    void counter(const char *name, int64_t delta) const {
        if (host_ && host_->counter_add && delta != 0) host_->counter_add(host_, name, delta);
    }
    bool stop_requested() const {
        return host_ && host_->stop_requested && host_->stop_requested(host_) != 0;
    }
    const void *extension(const char *id) const {
        return host_ && host_->get_extension ? host_->get_extension(host_, id) : nullptr;
    }
    const sluice_host *raw() const { return host_; }

private:
    const sluice_host *host_;
};

// What a stage's constructor receives. The string views are valid only
// during the constructor: copy what you keep. host is valid for the
// instance's whole life.
struct Context {
    Host host;
    std::string_view stage_id;
    std::string_view config_json; // the stage's "config" object as JSON text
    std::string_view base_dir;    // directory of the manifest
    uint32_t worker_index = 0;
    uint32_t worker_count = 1;

    // Resolves a path from the config against the manifest's directory.
    std::string resolve_path(std::string_view path) const {
        if (path.empty() || path.front() == '/' || base_dir.empty()) return std::string(path);
        std::string out(base_dir);
        if (out.back() != '/') out += '/';
        out += path;
        return out;
    }
};

// --- records -----------------------------------------------------------------

inline sluice_attr attr(std::string_view key, std::string_view value) {
    return sluice_attr{key.data(), key.size(), value.data(), value.size()};
}

// A borrowed view of one record.
class Record {
public:
    explicit Record(const sluice_record &r) : r_(&r) {}
    uint64_t id() const { return r_->id; }
    std::string_view payload() const { return {r_->payload, r_->payload_len}; }
    std::string_view content_type() const {
        return r_->content_type ? std::string_view(r_->content_type) : SLUICE_CONTENT_JSON;
    }
    bool is_json() const { return content_type() == SLUICE_CONTENT_JSON; }
    // The value of attribute `key`, if present.
    std::optional<std::string_view> attr(std::string_view key) const {
        for (uint32_t i = 0; i < r_->attr_count; ++i) {
            const sluice_attr &a = r_->attrs[i];
            if (std::string_view(a.key, a.key_len) == key) return std::string_view(a.value, a.value_len);
        }
        return std::nullopt;
    }
    const sluice_record &raw() const { return *r_; }

private:
    const sluice_record *r_;
};

// The borrowed input batch of one process call.
class Input {
public:
    Input(const sluice_record *records, uint32_t count) : records_(records), count_(count) {}
    uint32_t size() const { return count_; }
    bool empty() const { return count_ == 0; }
    Record operator[](uint32_t i) const { return Record(records_[i]); }
    const sluice_record *begin() const { return records_; }
    const sluice_record *end() const { return records_ + count_; }

private:
    const sluice_record *records_;
    uint32_t count_;
};

// Where results go during one call. Methods throw sluice::Error when the
// host refuses an argument (unknown output, index out of range): that is a
// bug in the plugin, not in the data.
class Emitter {
public:
    // `drop`: the host's sluice.drop/1 (the adapter below looks it up).
    explicit Emitter(const sluice_emitter *out, const sluice_drop_ext *drop = nullptr) : out_(out), drop_(drop) {}

    // A new record derived from input `input_index` (SLUICE_NO_INPUT in an
    // extractor or in flush). Pass `inherit_attrs` to keep the input's
    // attributes at no cost.
    void emit(uint32_t output, uint32_t input_index, std::string_view payload,
              const char *content_type = nullptr, const sluice_attr *attrs = nullptr,
              uint32_t attr_count = 0) const {
        sluice_record r{};
        r.payload = payload.data();
        r.payload_len = payload.size();
        r.content_type = content_type;
        r.attrs = attrs;
        r.attr_count = attr_count;
        check(out_->emit(out_, output, input_index, &r), "emit");
    }
    // A replacement for input record `in` on `output`, keeping its content
    // type and attributes (the common transformer case).
    void replace(uint32_t output, uint32_t input_index, const sluice_record &in,
                 std::string_view payload) const {
        sluice_record r = in;
        r.payload = payload.data();
        r.payload_len = payload.size();
        check(out_->emit(out_, output, input_index, &r), "emit");
    }
    // Extractors: a new record on output 0 with attributes.
    void emit_new(std::string_view payload, std::initializer_list<sluice_attr> attrs = {},
                  const char *content_type = nullptr) const {
        emit(0, SLUICE_NO_INPUT, payload, content_type, attrs.size() ? attrs.begin() : nullptr,
             static_cast<uint32_t>(attrs.size()));
    }
    void forward(uint32_t input_index, uint32_t output = 0) const {
        check(out_->forward(out_, output, input_index), "forward");
    }
    void reject(uint32_t input_index, std::string_view reason) const {
        check(out_->reject(out_, input_index, reason.data(), reason.size()), "reject");
    }
    void fail(uint32_t input_index, std::string_view message) const {
        check(out_->fail(out_, input_index, message.data(), message.size()), "fail");
    }
    // Extractors: bytes that did not make a record, with where they came from.
    void emit_failed(std::string_view raw, std::string_view message,
                     std::initializer_list<sluice_attr> attrs = {},
                     const char *content_type = SLUICE_CONTENT_TEXT) const {
        sluice_record r{};
        r.payload = raw.data();
        r.payload_len = raw.size();
        r.content_type = content_type;
        r.attrs = attrs.size() ? attrs.begin() : nullptr;
        r.attr_count = static_cast<uint32_t>(attrs.size());
        check(out_->emit_failed(out_, &r, message.data(), message.size()), "emit_failed");
    }
    // Input `input_index` is filtered out on purpose: counted as dropped,
    // not as an error. Every input must be forwarded, emitted from,
    // rejected, failed or dropped, or the host sends it down the error path
    // as "unaccounted" (plugin.h, 8). Throws on a host older than ABI 1.3.
    void drop(uint32_t input_index) const {
        if (!drop_ || drop_->struct_size < sizeof(sluice_drop_ext) || !drop_->drop)
            throw Error("the host does not offer " SLUICE_EXT_DROP " (it is older than ABI 1.3)");
        check(drop_->drop(out_, input_index), "drop");
    }
    const sluice_emitter *raw() const { return out_; }

private:
    static void check(sluice_status s, const char *what) {
        if (s != SLUICE_OK) throw Error(std::string("host refused ") + what + " (bad output or index)");
    }
    const sluice_emitter *out_;
    const sluice_drop_ext *drop_;
};

// --- the adapter from a class to a descriptor ----------------------------------

// Builds the JSON of sluice.resources/1:
//   Resources r; r.reads("path", "file://" + absolute_pattern); return r.json();
class Resources {
public:
    Resources &reads(std::string_view config_key, std::string_view uri) { return add(reads_, config_key, uri); }
    Resources &writes(std::string_view config_key, std::string_view uri) { return add(writes_, config_key, uri); }
    std::string json() const { return "{\"reads\":[" + reads_ + "],\"writes\":[" + writes_ + "]}"; }

private:
    static void quote(std::string &out, std::string_view s) {
        out += '"';
        for (char c : s) {
            if (c == '"' || c == '\\') out += '\\';
            if (static_cast<unsigned char>(c) < 0x20) {
                char buf[8];
                std::snprintf(buf, sizeof buf, "\\u%04x", unsigned(c));
                out += buf;
                continue;
            }
            out += c;
        }
        out += '"';
    }
    Resources &add(std::string &list, std::string_view key, std::string_view uri) {
        if (!list.empty()) list += ',';
        list += "{\"uri\":";
        quote(list, uri);
        list += ",\"config\":";
        quote(list, key);
        list += '}';
        return *this;
    }
    std::string reads_, writes_;
};

namespace detail {

template <class T>
struct Instance {
    template <class... A>
    explicit Instance(A &&...a) : stage(std::forward<A>(a)...) {}
    T stage;
    const sluice_drop_ext *drop = nullptr; // the host's sluice.drop/1, for Emitter::drop
    std::string last_error;
    std::string last_position; // sluice.checkpoint/1
    std::string last_marker;   // sluice.exactly_once/1
    std::string last_resources; // sluice.resources/1
    std::string last_preflight; // sluice.preflight/1
};

template <class T> concept HasStart = requires(T t) { t.start(); };
template <class T> concept HasStop = requires(T t) { t.stop(); };
template <class T> concept HasFlush = requires(T t, Emitter &e) { t.flush(e); };
template <class T> concept HasPull = requires(T t, Emitter &e, uint32_t n) {
    { t.pull(e, n) } -> std::convertible_to<bool>;
};
template <class T> concept HasProcess = requires(T t, Input in, Emitter &e) { t.process(in, e); };
template <class T> concept HasExtension = requires(T t, const char *id) {
    { t.extension(id) } -> std::convertible_to<const void *>;
};
template <class T> concept HasConfigOutputs = requires(const T t) {
    { t.output_names() } -> std::convertible_to<const std::vector<std::string> &>;
};
template <class T> concept HasCheckpoint = requires(T t, const T ct, std::string_view p) {
    { ct.checkpoint() } -> std::convertible_to<std::string>;
    t.restore(p);
};
template <class T> concept HasAcknowledged = requires(T t, std::string_view p) { t.acknowledged(p); };
template <class T> concept HasDelivery = requires(const T t) {
    { t.durable_on_process() } -> std::convertible_to<bool>;
};
template <class T> concept HasSettle = HasDelivery<T> && requires(T t) { t.settle(); };
template <class T> concept HasExactlyOnce = requires(T t, Input in, Emitter &e, std::string_view m) {
    { t.recover() } -> std::convertible_to<std::string>;
    t.process(in, e, m);
};
template <class T> concept HasResources = requires(const T t) {
    { t.resources() } -> std::convertible_to<std::string>;
};
template <class T> concept HasSyncMarkers = requires(T t) { t.sync_markers(); };
template <class T> concept HasPreflight = requires(const T t) {
    { t.preflight() } -> std::convertible_to<std::vector<std::string>>;
};
template <class T> concept HasCapabilities = requires { T::capabilities; };
template <class T> concept HasConfigSpec = requires(std::string_view config) {
    { T::config_spec().schema_text() } -> std::convertible_to<std::string>;
    { T::config_spec().with_defaults(config) } -> std::convertible_to<std::string>;
};

// The stage's config spec, built once.
template <class T> const auto &config_spec_of() {
    static const auto spec = T::config_spec();
    return spec;
}

// Built when the library is loaded: a spec that throws (a custom schema that
// is not JSON) must not end the host's process, so its message stands in
// for the schema and the host refuses the stage as having no valid schema.
template <class T> const char *config_schema_text() noexcept {
    if constexpr (HasConfigSpec<T>) {
        static const std::string text = [] {
            try {
                return config_spec_of<T>().schema_text();
            } catch (const std::exception &e) {
                return std::string("config_spec() failed: ") + e.what();
            }
        }();
        return text.c_str();
    } else {
        return T::config_schema;
    }
}
template <class T> concept HasOutputs = requires { T::outputs; };

// Runs f, turning exceptions into a status and a message.
template <class F>
sluice_status guarded(std::string &message, F &&f) noexcept {
    try {
        f();
        return SLUICE_OK;
    } catch (const RetryError &e) {
        message = e.what();
        return SLUICE_RETRY;
    } catch (const FatalError &e) {
        message = e.what();
        return SLUICE_FATAL;
    } catch (const std::exception &e) {
        message = e.what();
        return SLUICE_ERROR;
    } catch (...) {
        message = "unknown exception";
        return SLUICE_ERROR;
    }
}

template <class T>
sluice_status create(const sluice_create_args *args, void **instance) noexcept {
    std::string message;
    *instance = nullptr;
    sluice_status s = guarded(message, [&] {
        Context ctx;
        ctx.host = Host(args->host);
        ctx.stage_id = args->stage_id ? args->stage_id : "";
        ctx.config_json = std::string_view(args->config_json ? args->config_json : "{}",
                                           args->config_json ? args->config_len : 2);
        // The host fills in defaults too (SLUICE_CAP_CONFIG_DEFAULTS); doing it
        // here as well keeps a stage correct under an older host or a test
        // driver that calls create directly.
        std::string defaulted;
        if constexpr (HasConfigSpec<T>) {
            defaulted = config_spec_of<T>().with_defaults(ctx.config_json);
            ctx.config_json = defaulted;
        }
        ctx.base_dir = args->base_dir ? args->base_dir : "";
        ctx.worker_index = args->worker_index;
        ctx.worker_count = args->worker_count;
        auto *made = new Instance<T>(ctx);
        made->drop = static_cast<const sluice_drop_ext *>(ctx.host.extension(SLUICE_EXT_DROP));
        *instance = made;
    });
    if (s != SLUICE_OK && args->error && args->error_size > 0)
        std::snprintf(args->error, args->error_size, "%s", message.c_str());
    return s;
}

template <class T> Instance<T> &self(void *p) { return *static_cast<Instance<T> *>(p); }

template <class T>
sluice_status start(void *p) noexcept {
    auto &i = self<T>(p);
    return guarded(i.last_error, [&] {
        if constexpr (HasStart<T>) i.stage.start();
    });
}

template <class T>
sluice_status stop(void *p) noexcept {
    auto &i = self<T>(p);
    return guarded(i.last_error, [&] {
        if constexpr (HasStop<T>) i.stage.stop();
    });
}

template <class T>
sluice_status pull(void *p, const sluice_emitter *out, uint32_t max, int32_t *end) noexcept {
    auto &i = self<T>(p);
    return guarded(i.last_error, [&] {
        Emitter e(out, i.drop);
        *end = i.stage.pull(e, max) ? 1 : 0;
    });
}

template <class T>
sluice_status process(void *p, const sluice_record *records, uint32_t count,
                      const sluice_emitter *out) noexcept {
    auto &i = self<T>(p);
    return guarded(i.last_error, [&] {
        Emitter e(out, i.drop);
        i.stage.process(Input(records, count), e);
    });
}

template <class T>
sluice_status flush(void *p, const sluice_emitter *out) noexcept {
    auto &i = self<T>(p);
    return guarded(i.last_error, [&] {
        Emitter e(out, i.drop);
        if constexpr (HasFlush<T>) i.stage.flush(e);
    });
}

template <class T> void destroy(void *p) noexcept { delete static_cast<Instance<T> *>(p); }

template <class T> const char *last_error(void *p) noexcept { return self<T>(p).last_error.c_str(); }

template <class T> uint32_t output_count(void *p) noexcept {
    return static_cast<uint32_t>(self<T>(p).stage.output_names().size());
}
template <class T> const char *output_name(void *p, uint32_t i) noexcept {
    const auto &names = self<T>(p).stage.output_names();
    return i < names.size() ? names[i].c_str() : nullptr;
}
template <class T> inline constexpr sluice_outputs_ext outputs_ext = {sizeof(sluice_outputs_ext), 0, &output_count<T>,
                                                                     &output_name<T>};

template <class T> const char *checkpoint_position(void *p) noexcept {
    auto &i = self<T>(p);
    try {
        i.last_position = i.stage.checkpoint();
    } catch (...) {
        i.last_position.clear();
    }
    return i.last_position.c_str();
}
template <class T> sluice_status checkpoint_restore(void *p, const char *pos, size_t len) noexcept {
    auto &i = self<T>(p);
    return guarded(i.last_error, [&] { i.stage.restore(std::string_view(pos, len)); });
}
template <class T> inline constexpr sluice_checkpoint_ext checkpoint_ext = {
    sizeof(sluice_checkpoint_ext), 0, &checkpoint_position<T>, &checkpoint_restore<T>};
template <class T> void acknowledged(void *p, const char *pos, size_t len) noexcept {
    try {
        self<T>(p).stage.acknowledged(std::string_view(pos, len));
    } catch (...) {
        // Nothing to report it to: an acknowledgement cannot fail.
    }
}
template <class T> inline constexpr sluice_acknowledged_ext acknowledged_ext = {sizeof(sluice_acknowledged_ext), 0,
                                                                               &acknowledged<T>};
template <class T> int32_t durable_on_process(void *p) noexcept {
    try {
        return self<T>(p).stage.durable_on_process() ? 1 : 0;
    } catch (...) {
        return 0;
    }
}
template <class T> inline constexpr sluice_delivery_ext delivery_ext = {sizeof(sluice_delivery_ext), 0,
                                                                       &durable_on_process<T>};

template <class T> sluice_status settle(void *p) noexcept {
    auto &i = self<T>(p);
    return guarded(i.last_error, [&] { i.stage.settle(); });
}
template <class T> inline constexpr sluice_settle_ext settle_ext = {sizeof(sluice_settle_ext), 0, &settle<T>};

template <class T> sluice_status exactly_once_recover(void *p, const char **marker) noexcept {
    auto &i = self<T>(p);
    *marker = nullptr;
    sluice_status s = guarded(i.last_error, [&] { i.last_marker = i.stage.recover(); });
    if (s == SLUICE_OK) *marker = i.last_marker.c_str();
    return s;
}
template <class T>
sluice_status exactly_once_process(void *p, const sluice_record *records, uint32_t count, const sluice_emitter *out,
                                   const char *marker, size_t marker_len) noexcept {
    auto &i = self<T>(p);
    return guarded(i.last_error, [&] {
        Emitter e(out, i.drop);
        i.stage.process(Input(records, count), e, std::string_view(marker, marker_len));
    });
}
template <class T> sluice_status exactly_once_sync(void *p) noexcept {
    // Its own message slot: it runs beside the worker's calls.
    thread_local std::string message;
    return guarded(message, [&] { self<T>(p).stage.sync_markers(); });
}
template <class T> constexpr auto exactly_once_sync_fn() {
    if constexpr (HasSyncMarkers<T>) return &exactly_once_sync<T>;
    else return static_cast<sluice_status (*)(void *)>(nullptr);
}
template <class T> inline constexpr sluice_exactly_once_ext exactly_once_ext = {
    sizeof(sluice_exactly_once_ext), 0, &exactly_once_recover<T>, &exactly_once_process<T>, exactly_once_sync_fn<T>()};

template <class T> const char *resources(void *p) noexcept {
    auto &i = self<T>(p);
    if (guarded(i.last_error, [&] { i.last_resources = i.stage.resources(); }) != SLUICE_OK) return nullptr;
    return i.last_resources.empty() ? nullptr : i.last_resources.c_str();
}
template <class T> inline constexpr sluice_resources_ext resources_ext = {sizeof(sluice_resources_ext), 0,
                                                                         &resources<T>};

template <class T> const char *preflight(void *p) noexcept {
    auto &i = self<T>(p);
    std::vector<std::string> problems;
    if (guarded(i.last_error, [&] { problems = i.stage.preflight(); }) != SLUICE_OK)
        problems = {"the check failed: " + i.last_error};
    i.last_preflight.clear();
    for (const std::string &problem : problems)
        i.last_preflight += (i.last_preflight.empty() ? "" : "\n") + problem;
    return i.last_preflight.empty() ? nullptr : i.last_preflight.c_str();
}
template <class T> inline constexpr sluice_preflight_ext preflight_ext = {sizeof(sluice_preflight_ext), 0,
                                                                         &preflight<T>};

template <class T>
const void *get_extension(void *p, const char *id) noexcept {
    if constexpr (HasResources<T>) {
        if (p && std::strcmp(id, SLUICE_EXT_RESOURCES) == 0) return &resources_ext<T>;
    }
    if constexpr (HasPreflight<T>) {
        if (p && std::strcmp(id, SLUICE_EXT_PREFLIGHT) == 0) return &preflight_ext<T>;
    }
    if constexpr (HasExactlyOnce<T>) {
        if (p && std::strcmp(id, SLUICE_EXT_EXACTLY_ONCE) == 0) return &exactly_once_ext<T>;
    }
    if constexpr (HasCheckpoint<T>) {
        if (p && std::strcmp(id, SLUICE_EXT_CHECKPOINT) == 0) return &checkpoint_ext<T>;
    }
    if constexpr (HasCheckpoint<T> && HasAcknowledged<T>) {
        if (p && std::strcmp(id, SLUICE_EXT_ACKNOWLEDGED) == 0) return &acknowledged_ext<T>;
    }
    if constexpr (HasDelivery<T>) {
        if (p && std::strcmp(id, SLUICE_EXT_DELIVERY) == 0) return &delivery_ext<T>;
    }
    if constexpr (HasSettle<T>) {
        if (p && std::strcmp(id, SLUICE_EXT_SETTLE) == 0) return &settle_ext<T>;
    }
    if constexpr (HasConfigOutputs<T>) {
        if (p && std::strcmp(id, SLUICE_EXT_OUTPUTS) == 0) return &outputs_ext<T>;
    }
    if constexpr (HasExtension<T>) {
        try {
            return self<T>(p).stage.extension(id);
        } catch (...) {
            return nullptr;
        }
    } else {
        (void)p;
        (void)id;
        return nullptr;
    }
}

template <class T> constexpr uint64_t capabilities() {
    uint64_t caps = 0;
    if constexpr (HasCapabilities<T>) caps = T::capabilities;
    if constexpr (HasConfigOutputs<T>) caps |= SLUICE_CAP_CONFIG_OUTPUTS;
    if constexpr (HasConfigSpec<T>) caps |= SLUICE_CAP_CONFIG_DEFAULTS;
    return caps;
}

template <class T> sluice_stage_descriptor make_descriptor() {
    static_assert(HasPull<T> || HasProcess<T>,
                  "a stage needs bool pull(Emitter&, uint32_t) (extractor) or "
                  "void process(Input, Emitter&)");
    sluice_stage_descriptor d{};
    d.struct_size = sizeof(sluice_stage_descriptor);
    d.kind = T::kind;
    d.name = T::name;
    d.version = T::version;
    d.description = T::description;
    d.config_schema = config_schema_text<T>();
    d.capabilities = capabilities<T>();
    if constexpr (HasOutputs<T>) {
        d.output_names = T::outputs.data();
        d.output_count = static_cast<uint32_t>(T::outputs.size());
    }
    d.create = &create<T>;
    d.start = &start<T>;
    if constexpr (HasPull<T>) d.pull = &pull<T>;
    if constexpr (HasProcess<T>) d.process = &process<T>;
    d.flush = &flush<T>;
    d.stop = &stop<T>;
    d.destroy = &destroy<T>;
    d.last_error = &last_error<T>;
    d.get_extension = &get_extension<T>;
    return d;
}

// Made when the library is loaded (a config spec's schema text is built then).
template <class T> inline const sluice_stage_descriptor descriptor = make_descriptor<T>();

template <class... T> struct Entry {
    static constexpr const sluice_stage_descriptor *stages[] = {&descriptor<T>...};
    static constexpr sluice_entry entry = {SLUICE_ABI_MAJOR, SLUICE_ABI_MINOR, sizeof(sluice_entry),
                                           sizeof...(T), stages};
};

} // namespace detail
} // namespace sluice

// Exports the library's stages: SLUICE_PLUGIN(StageA, StageB, ...). Use once
// per library, at namespace scope.
#define SLUICE_PLUGIN(...)                                                      \
    extern "C" SLUICE_EXPORT const sluice_entry *sluice_plugin_entry(void) {   \
        return &::sluice::detail::Entry<__VA_ARGS__>::entry;                    \
    }

#endif // SLUICE_PLUGIN_HPP
