/*
 * sluice/plugin.h - the Sluice stage plugin C ABI, version 1.
 *
 * This one header is everything a plugin needs. It is plain C99, compiles as
 * C and as C++, and depends only on <stdint.h> and <stddef.h>. A plugin links
 * against nothing from the host: every host service arrives as a function
 * pointer in a table handed to the plugin.
 *
 * ---------------------------------------------------------------------------
 * 1. What a plugin is
 * ---------------------------------------------------------------------------
 * A plugin is a shared library (.so) that exports exactly one function with C
 * linkage:
 *
 *     SLUICE_EXPORT const sluice_entry *sluice_plugin_entry(void);
 *
 * The name never depends on the file name: a renamed file still loads. The
 * returned entry is static, constant data. It lists the *stages* the library
 * provides (one library may ship several, e.g. a file extractor and a file
 * loader). Listing stages never creates anything.
 *
 * A stage has a kind (extractor, transformer, enricher, validator, loader), a
 * name ("file", "map", ...) and a version. A manifest picks a stage by kind and
 * name. For every worker thread of a pipeline stage the host creates one
 * *instance* (unless the stage declares SLUICE_CAP_CONCURRENT, see 6).
 *
 * ---------------------------------------------------------------------------
 * 2. Versioning
 * ---------------------------------------------------------------------------
 * The entry starts with the ABI version the plugin was built against. The
 * host loads a plugin only when the majors are equal and the host's minor is
 * >= the plugin's minor; otherwise it refuses it with a message naming both
 * versions. Structs in this header are frozen for ABI major 1. Structs the
 * host *reads* from the plugin (entry, descriptor) start with a `struct_size`
 * field as a safety net. New capabilities arrive as *extensions* looked up by
 * versioned string ids, in both directions:
 *
 *     plugin side:  desc->get_extension(instance, "sluice.checkpoint/1")
 *     host side:    host->get_extension(host, "sluice.metrics/1")
 *
 * An extension that is not known returns NULL; callers must cope with that.
 * A minor version adds extensions and nothing else:
 *     1.0  the first
 *     1.1  sluice.acknowledged/1 (a plugin built against 1.1 needs a host
 *          that speaks 1.1, which will call it)
 *     1.2  sluice.exactly_once/1, sluice.resources/1
 *     1.3  the host extension sluice.drop/1 (a filter says which records it
 *          drops on purpose, see 8); sluice.metrics/1 (a stage declares
 *          its metrics: the host shows them without knowing the plugin; a
 *          counter_add name may carry labels, "requests{code=202}", which
 *          the metrics endpoint shows as labels of "requests")
 *     1.4  the capability SLUICE_CAP_CONFIG_DEFAULTS: the host fills in the
 *          config schema's "default" values before create (a plugin built
 *          against an older minor gets the config exactly as written);
 *          sluice.preflight/1 (checks before a run: `sluice validate
 *          --check`, and every `sluice run` before it reads anything)
 *
 * ---------------------------------------------------------------------------
 * 3. Data model
 * ---------------------------------------------------------------------------
 * A record is a payload (bytes: usually a UTF-8 JSON document, or text, or
 * binary), its content type, string key/value attributes (metadata such as
 * the source file and line) and a 64-bit id assigned by the host when the
 * record is extracted. The id stays with the record and everything derived
 * from it; it is what acknowledgements, dead letters and reports refer to.
 * Records travel in batches (hundreds to thousands at a time).
 *
 * ---------------------------------------------------------------------------
 * 4. Ownership
 * ---------------------------------------------------------------------------
 * - Everything the host passes into a call (records, config text, strings) is
 *   BORROWED for the duration of that call. Copy what you keep.
 * - Everything the plugin passes to the host (an emitted record, a message) is
 *   borrowed by the host for the duration of that host call; the host copies
 *   what it keeps. Nothing is ever freed across the boundary.
 * - Strings returned by the plugin (descriptor fields, last_error) stay valid
 *   as documented on each field.
 *
 * ---------------------------------------------------------------------------
 * 5. Lifecycle of an instance
 * ---------------------------------------------------------------------------
 *
 *     create(config) -> start -> (pull | process)* -> flush -> stop -> destroy
 *
 * - create   parses and checks the config. It must have NO side effects
 *            (open no file, no connection): `sluice validate` creates and
 *            destroys instances only to check configs. The config has
 *            already been checked against the descriptor's config_schema
 *            (the keywords the host enforces are listed there); its
 *            "default" values are filled in only for a stage that sets
 *            SLUICE_CAP_CONFIG_DEFAULTS (ABI 1.4). What the schema cannot
 *            say (one of two keys, a valid pattern, an env variable that
 *            must be set) create checks, and reports as one line
 *            "FIELD: what is wrong" ("rules[2].regex: invalid pattern"):
 *            the host puts "FILE: /stages/N/config: " in front, so do not
 *            start with "config". Read fields by length, never with strstr
 *            or strtod on the text (it is not meant to be scanned past
 *            config_len): sluice/plugin_json.h does that in C, and in C++
 *            sluice/config_spec.hpp declares each field once and gives the
 *            schema, the defaults and the docs from that one declaration.
 * - start    acquires resources (opens files, connects).
 * - pull     (extractors) produces the next batch.
 *   process  (every other kind) handles one input batch.
 * - flush    called once at end of input, on the normal and on the graceful
 *            stop path: emit anything buffered, make loaded data durable and
 *            visible (a file loader renames its temp file here).
 *            For at-least-once delivery a loader's records count as
 *            delivered only once flush returns SLUICE_OK, unless the stage
 *            says they are durable when process returns (sluice.delivery/1);
 *            extractors that can resume offer sluice.checkpoint/1. Both are
 *            described with the extensions below.
 * - stop     releases resources. If flush was not called (the run failed),
 *            the plugin must not make partial output look complete.
 * - destroy  frees the instance. Always called after a successful create,
 *            even if start failed.
 *
 * Each function below is tagged with the thread it is called on and the
 * state it is called in:
 *   [control]  the host's control thread      [worker]  a stage worker thread
 *   [any]      any thread                     [thread-safe] may be concurrent
 * One exception, in process only: when a call overruns the stage's
 * timeout_ms the host abandons it (a thread cannot be killed). It creates
 * and starts a replacement instance on the worker thread, and the abandoned
 * instance is stopped and destroyed on the thread of the overrunning call
 * once that call returns. With "isolation": "process" the worker is killed
 * instead and the tags hold without exception. Likewise, a stage isolated
 * after a crash in process that returns to the host's process mid-run
 * creates and starts its new instances on the worker threads.
 *
 * ---------------------------------------------------------------------------
 * 6. Concurrency
 * ---------------------------------------------------------------------------
 * By default the host calls one instance from at most one thread at a time
 * (it creates one instance per worker thread; calls on one instance are
 * serialised, though not always on the same thread). Different instances may
 * run concurrently, so shared state between instances (plugin globals) must
 * be synchronised by the plugin. A stage that sets SLUICE_CAP_CONCURRENT
 * gets a single instance called from all worker threads at once.
 * SLUICE_CAP_SINGLE_WORKER makes the host refuse `threads` > 1 (e.g. a loader
 * writing one ordered file).
 *
 * ---------------------------------------------------------------------------
 * 7. Status codes and errors
 * ---------------------------------------------------------------------------
 * Calls return a sluice_status. On anything but SLUICE_OK the plugin should
 * leave a message, readable through last_error(instance) until the next call
 * on that instance (create writes its message into the caller's buffer).
 * Exceptions, panics and longjmps must never cross the boundary.
 *
 * Record errors and environment errors are different things, and a plugin
 * must keep them apart, because the host treats them in opposite ways:
 * - A RECORD error is about one record: a bad value, a cast that fails, a
 *   row the destination refuses (a constraint, a type). Report it with
 *   emitter->fail(index, ...) (or reject for a quality rule) and go on with
 *   the rest of the batch. The stage's on_error policy decides what happens
 *   to that record (retry, skip, dead-letter, fail the run); a skipped or
 *   dead-lettered record counts as delivered.
 * - An ENVIRONMENT error is about the destination or source, not the
 *   record: disk full, an I/O error, a read-only or missing file system, a
 *   permission denied, an unreadable input, a lost connection, failed
 *   authentication, a server that is down. Return SLUICE_RETRY from the call
 *   (C++: throw sluice::EnvironmentError) after undoing what the call did
 *   (roll back the transaction, truncate the partial write): the host calls
 *   again with the same input after a backoff, for the stage's
 *   `retry_environment_ms` (30 s by default), and then fails the stage: the
 *   run stops cleanly and exits 1, nothing that reached the stage is
 *   skipped, dead-lettered or acknowledged, so the next run with the same
 *   state reads it again. Never turn an environment error into per-record
 *   fail() calls: the default policy would skip those records and they would
 *   be lost.
 *
 * ---------------------------------------------------------------------------
 * 8. Every input record is accounted for
 * ---------------------------------------------------------------------------
 * After each process call the host checks that every input record was
 * forwarded, emitted from (emit with its input_index), rejected, failed, or
 * dropped on purpose. A record with none of these is "unaccounted": the
 * host cannot tell a filter from a bug, so it takes the stage's error path
 * (on_error) with the reason "the plugin did not account for this record"
 * and is counted and logged. A plugin that filters must say so, per record:
 *
 *     const sluice_drop_ext *d = host->get_extension(host, SLUICE_EXT_DROP);
 *     d->drop(out, i);     (C++: out.drop(i))
 *
 * An emitter call the host refuses (an output that does not exist, an index
 * out of range) returns SLUICE_ERROR and is logged once per stage; the
 * record it named stays unaccounted. A plugin that keeps records across
 * calls (an aggregator emitting in flush) should drop them when it takes
 * them in and emit the aggregate with SLUICE_NO_INPUT.
 *
 * ---------------------------------------------------------------------------
 * 9. Running in a worker process
 * ---------------------------------------------------------------------------
 * A stage with "isolation": "process" runs its plugin in a worker process
 * (`sluice-worker`, one per worker thread) that loads the same library
 * through this same ABI. The plugin cannot tell and needs no change, but it
 * may assume only what this header promises:
 * - Records, the config and every host function behave as in the host.
 *   Records are borrowed from shared memory for the call: copy what you keep.
 * - Host functions called outside a call (from a thread of the plugin's
 *   own) are delivered when the current or next call ends.
 * - Plugin globals are per process: each worker thread's instance lives in a
 *   process of its own, even with SLUICE_CAP_CONCURRENT.
 * - The worker may be killed at any time (a crash, a memory limit, a
 *   timeout) and a new one started: create and start are called again and
 *   the batch that was in flight is sent again. Anything the plugin did
 *   outside the host (rows written, files appended) must be safe to redo,
 *   exactly as after a crash of the whole host.
 * - Stdout and stderr are the host's.
 *
 * ---------------------------------------------------------------------------
 * 10. Minimal plugin in C
 * ---------------------------------------------------------------------------
 *
 *   #include <sluice/plugin.h>
 *   static sluice_status my_create(const sluice_create_args *a, void **inst)
 *   { *inst = NULL; return SLUICE_OK; }
 *   static void my_destroy(void *inst) { (void)inst; }
 *   static sluice_status my_process(void *inst, const sluice_record *in,
 *                                   uint32_t n, const sluice_emitter *out)
 *   {
 *       for (uint32_t i = 0; i < n; i++) out->forward(out, 0, i);
 *       return SLUICE_OK;
 *   }
 *   static const sluice_stage_descriptor my_stage = {
 *       .struct_size = sizeof(sluice_stage_descriptor),
 *       .kind = SLUICE_KIND_TRANSFORMER, .name = "passthrough",
 *       .version = "1.0.0", .description = "forwards every record",
 *       .config_schema = "{\"type\":\"object\",\"properties\":{}}",
 *       .create = my_create, .destroy = my_destroy, .process = my_process,
 *   };
 *   static const sluice_stage_descriptor *const my_stages[] = {&my_stage};
 *   static const sluice_entry my_entry = {
 *       SLUICE_ABI_MAJOR, SLUICE_ABI_MINOR, sizeof(sluice_entry),
 *       1, my_stages };
 *   SLUICE_EXPORT const sluice_entry *sluice_plugin_entry(void)
 *   { return &my_entry; }
 *
 * Build it with hidden visibility (-fvisibility=hidden) so that only the
 * entry symbol is exported; SLUICE_EXPORT marks it visible.
 */
#ifndef SLUICE_PLUGIN_H
#define SLUICE_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------ */
/* Version and export                                                       */
/* ------------------------------------------------------------------------ */

#define SLUICE_ABI_MAJOR 1
#define SLUICE_ABI_MINOR 5

/* The one symbol a plugin exports. */
#define SLUICE_ENTRY_SYMBOL "sluice_plugin_entry"

#if defined(_WIN32)
#define SLUICE_EXPORT __declspec(dllexport)
#else
#define SLUICE_EXPORT __attribute__((visibility("default")))
#endif

/* ------------------------------------------------------------------------ */
/* Enumerations (int32_t at the boundary, never a C enum type)               */
/* ------------------------------------------------------------------------ */

typedef int32_t sluice_status;
/* Success. */
#define SLUICE_OK ((sluice_status)0)
/* Environment failure (see 7): nothing was consumed or written; the host
 * calls again later with the same input (after a backoff), and once the
 * stage's retry_environment_ms has passed it fails the stage. Never a record
 * error: what the call held is neither skipped nor acknowledged. */
#define SLUICE_RETRY ((sluice_status)1)
/* This call failed. For process: the whole input batch failed and goes to
 * the stage's error path (records already emitted in this call are
 * discarded). For pull: this attempt produced nothing usable. */
#define SLUICE_ERROR ((sluice_status)2)
/* The instance is unusable; the host stops the pipeline. */
#define SLUICE_FATAL ((sluice_status)3)

typedef int32_t sluice_kind;
#define SLUICE_KIND_EXTRACTOR ((sluice_kind)1)   /* produces records (pull) */
#define SLUICE_KIND_TRANSFORMER ((sluice_kind)2) /* reshapes records */
#define SLUICE_KIND_ENRICHER ((sluice_kind)3)    /* adds data from elsewhere */
#define SLUICE_KIND_VALIDATOR ((sluice_kind)4)   /* quality gate: pass/fail */
#define SLUICE_KIND_LOADER ((sluice_kind)5)      /* writes records out */

typedef int32_t sluice_log_level;
#define SLUICE_LOG_TRACE ((sluice_log_level)0)
#define SLUICE_LOG_DEBUG ((sluice_log_level)1)
#define SLUICE_LOG_INFO ((sluice_log_level)2)
#define SLUICE_LOG_WARN ((sluice_log_level)3)
#define SLUICE_LOG_ERROR ((sluice_log_level)4)

/* Capability flags (sluice_stage_descriptor.capabilities). */
/* One instance may be called from several worker threads at once. */
#define SLUICE_CAP_CONCURRENT ((uint64_t)1 << 0)
/* The stage must run with exactly one worker thread. */
#define SLUICE_CAP_SINGLE_WORKER ((uint64_t)1 << 1)
/* The stage only forwards/rejects its input and never emits new records; the
 * host may skip work it would otherwise do for new payloads. Advisory. */
#define SLUICE_CAP_READ_ONLY ((uint64_t)1 << 2)

/* The stage's outputs depend on its config (a router's routes): after
 * create, the host asks instance 0 for them through the plugin extension
 * SLUICE_EXT_OUTPUTS (sluice_outputs_ext) instead of reading output_names. */
#define SLUICE_CAP_CONFIG_OUTPUTS ((uint64_t)1 << 3)

/* ABI 1.4. Before create, the host fills in every absent config field whose
 * config_schema property has a "default" (also inside nested objects, in
 * objects of arrays whose "items" declare properties, and inside an object
 * that was itself just defaulted). Without this flag, or from a plugin built
 * against a minor below 4, create gets the config as the manifest wrote it.
 * The C++ helper (sluice/config_spec.hpp) sets it for you. */
#define SLUICE_CAP_CONFIG_DEFAULTS ((uint64_t)1 << 4)

/* Loaders whose every process call costs a commit, a sync or a request (a
 * database transaction, a webhook POST). When such a loader falls behind,
 * the host joins the batches waiting in its input queue into one call (a
 * "commit window": up to the stage's commit_records / commit_bytes, see the
 * manifest), so that one transaction takes them all; nothing changes for
 * the plugin but the size of `input`. Delivery is as for any call: with
 * sluice.delivery/1 the whole window is acknowledged once process returns;
 * with sluice.exactly_once/1 process_marked gets the marker that covers
 * every batch of the window, to store in the same transaction. Not used
 * for a loader that runs isolated. Ignored from a plugin built against a
 * minor below 4. */
#define SLUICE_CAP_COMMIT_WINDOWS ((uint64_t)1 << 5)

/* Content types the host and the bundled plugins use. Any MIME type works. */
#define SLUICE_CONTENT_JSON "application/json"
#define SLUICE_CONTENT_TEXT "text/plain"
#define SLUICE_CONTENT_BINARY "application/octet-stream"

/* ------------------------------------------------------------------------ */
/* Records                                                                  */
/* ------------------------------------------------------------------------ */

/* One metadata attribute. UTF-8, not NUL-terminated: use the lengths. */
typedef struct sluice_attr {
    const char *key;
    size_t key_len;
    const char *value;
    size_t value_len;
} sluice_attr;

/* One record. Frozen layout (records sit in arrays, so there is no
 * struct_size). Records handed to a plugin are borrowed for the call. */
typedef struct sluice_record {
    /* Assigned by the host at extraction; stable for the record's life. When
     * a plugin emits a record, the host sets the id from the input it derives
     * from (see sluice_emitter.emit), so plugins may leave it 0. */
    uint64_t id;
    /* The payload bytes; for JSON records one UTF-8 JSON document. May
     * contain NUL bytes; not NUL-terminated. */
    const char *payload;
    size_t payload_len;
    /* NUL-terminated MIME type. NULL means SLUICE_CONTENT_JSON. */
    const char *content_type;
    /* Metadata attributes (may be NULL when attr_count is 0). */
    const sluice_attr *attrs;
    uint32_t attr_count;
    uint32_t reserved; /* zero */
} sluice_record;

/* Standard attribute keys the bundled plugins and the host understand. */
#define SLUICE_ATTR_SOURCE "source"           /* file path, URL, table ... */
#define SLUICE_ATTR_SOURCE_LINE "source_line" /* 1-based line in source */

/* ------------------------------------------------------------------------ */
/* Host services                                                            */
/* ------------------------------------------------------------------------ */

/* The host's service table, one per instance, valid from create until after
 * destroy. All functions are [thread-safe]. */
typedef struct sluice_host {
    uint32_t struct_size;    /* sizeof(sluice_host) as the host knows it */
    uint16_t abi_major;      /* the host's ABI version */
    uint16_t abi_minor;
    void *host_data;         /* opaque, pass back unchanged */
    /* Write a log line; the host prefixes it with the stage id. */
    void (*log)(const struct sluice_host *host, sluice_log_level level,
                const char *message, size_t message_len);
    /* Returns nonzero when `level` would be logged (skip formatting when 0). */
    int32_t (*log_enabled)(const struct sluice_host *host, sluice_log_level level);
    /* Add `delta` to the stage counter `name` (NUL-terminated). Counters
     * appear in the run report under the stage. Cheap, but call it per batch
     * rather than per record. */
    void (*counter_add)(const struct sluice_host *host, const char *name, int64_t delta);
    /* Nonzero once the pipeline is stopping (signal or failure). Extractors
     * that block (waiting on a socket, a long query) should poll it. */
    int32_t (*stop_requested)(const struct sluice_host *host);
    /* Look up a host extension by versioned id ("sluice.metrics/1"). Returns
     * NULL when the host does not provide it. */
    const void *(*get_extension)(const struct sluice_host *host, const char *id);
} sluice_host;

/* Where a plugin puts its results during one pull/process/flush call. The
 * emitter is valid only for that call, on that thread. Its functions return
 * SLUICE_OK, or SLUICE_ERROR for a bad argument (unknown output, index out of
 * range); they never block. `output` indexes the stage's output_names; a
 * stage without output_names has one output, 0. */
typedef struct sluice_emitter {
    void *emitter_data; /* opaque, pass back unchanged */
    /* Emit a new record on `output`. The host copies the payload, content
     * type and attributes. `input_index` is the index of the input record it
     * derives from (the new record inherits its id), or SLUICE_NO_INPUT in
     * an extractor. Passing the input's own `attrs` pointer unchanged keeps
     * the attributes without copying them. */
    sluice_status (*emit)(const struct sluice_emitter *out, uint32_t output,
                          uint32_t input_index, const sluice_record *record);
    /* Forward input record `input_index` unchanged on `output`, by reference:
     * no copy, no re-serialisation. The fast path for validators/routers. */
    sluice_status (*forward)(const struct sluice_emitter *out, uint32_t output,
                             uint32_t input_index);
    /* The record failed a rule (a quality gate said no). It goes to the
     * stage's "fail" output if it has one and is counted as rejected, with
     * `reason` (UTF-8, copied) in the report and the log. */
    sluice_status (*reject)(const struct sluice_emitter *out, uint32_t input_index,
                            const char *reason, size_t reason_len);
    /* The record could not be processed (bad payload, cast failed, service
     * refused it). It leaves the normal flow and takes the stage's error path
     * with `message`. */
    sluice_status (*fail)(const struct sluice_emitter *out, uint32_t input_index,
                          const char *message, size_t message_len);
    /* For extractors: input that could not be turned into a record (a
     * malformed line). `raw` carries the bytes as read and attributes naming
     * where they came from; it takes the error path with `message`. */
    sluice_status (*emit_failed)(const struct sluice_emitter *out, const sluice_record *raw,
                                 const char *message, size_t message_len);
} sluice_emitter;

#define SLUICE_NO_INPUT ((uint32_t)0xFFFFFFFFu)

/* Arguments of create. Host-owned, borrowed for the call. */
typedef struct sluice_create_args {
    uint32_t struct_size;      /* sizeof(sluice_create_args) as the host knows it */
    uint32_t worker_index;     /* 0 .. worker_count-1: which worker this instance serves */
    uint32_t worker_count;     /* the stage's thread count (1 with SLUICE_CAP_CONCURRENT) */
    uint32_t reserved;         /* zero */
    const sluice_host *host;   /* valid until after destroy */
    const char *stage_id;      /* NUL-terminated manifest stage id */
    const char *config_json;   /* the stage's "config" as a JSON object text,
                                  checked against config_schema; with
                                  SLUICE_CAP_CONFIG_DEFAULTS its defaults are
                                  filled in, otherwise it is as the manifest
                                  wrote it (apply your own defaults). Not
                                  pretty-printed; key order is the manifest's,
                                  then the defaults' */
    size_t config_len;         /* (also NUL-terminated) */
    const char *base_dir;      /* NUL-terminated: directory of the manifest;
                                  resolve relative paths in config against it */
    char *error;               /* on failure write a one-line message here,
                                  "FIELD: what is wrong" (e.g. "rules[2].regex:
                                  invalid pattern"): the host puts the file and
                                  "/stages/N/config: " in front of it ... */
    size_t error_size;         /* ... of at most error_size bytes incl. NUL */
} sluice_create_args;

/* ------------------------------------------------------------------------ */
/* Stage descriptor                                                         */
/* ------------------------------------------------------------------------ */

typedef struct sluice_stage_descriptor {
    uint32_t struct_size;       /* sizeof(sluice_stage_descriptor) */
    sluice_kind kind;
    const char *name;           /* e.g. "file"; [a-z0-9_]+ */
    const char *version;        /* the stage's own version, e.g. "1.2.0" */
    const char *description;    /* one line for `sluice plugins` */
    /* The config's description as a JSON Schema subset. The host enforces
     * "type" (a name or a list: object, array, string, number, integer,
     * boolean, null), "properties", "required", "additionalProperties"
     * (false: unknown keys are errors; the top level is closed anyway),
     * "items", "enum", "minimum", "maximum", "minLength", "maxLength"; it
     * shows "description", "default" and "secret": true (a password or key:
     * shown as such) in `sluice plugins` and its --markdown table, and
     * ignores everything else ("format", "oneOf", "pattern" included: check
     * those in create). "default" is documentation unless the stage sets
     * SLUICE_CAP_CONFIG_DEFAULTS; then the host fills it in. Keep it
     * accurate: it is what an operator reads. */
    const char *config_schema;
    uint64_t capabilities;      /* SLUICE_CAP_* flags */
    /* Named outputs. NULL/0 means one unnamed output. reject() sends records
     * to the output named "fail": a validator must list {"pass", "fail"}
     * itself (the host adds none), or its rejects are only counted. */
    const char *const *output_names;
    uint32_t output_count;
    uint32_t reserved;          /* zero */

    /* [control] Create an instance from its config. On failure return
     * SLUICE_ERROR with a message in args->error. No side effects (see 5).
     * *instance may be set to NULL for a stateless stage. */
    sluice_status (*create)(const sluice_create_args *args, void **instance);
    /* [control, created] Acquire resources. May be NULL. */
    sluice_status (*start)(void *instance);
    /* [worker, started] Extractors only: emit up to `max_records` records
     * (more is allowed, fewer is normal) with emit(out, 0, SLUICE_NO_INPUT,
     * ...). Set *end_of_input to 1 when nothing more will ever come (the
     * records emitted in this call still count). Returning SLUICE_OK with no
     * record and no end means "nothing right now": the host calls again. */
    sluice_status (*pull)(void *instance, const sluice_emitter *out, uint32_t max_records,
                          int32_t *end_of_input);
    /* [worker, started] Every other kind: handle `count` input records. Each
     * input should be forwarded, emitted from, rejected, failed, or dropped
     * on purpose (a filter). */
    sluice_status (*process)(void *instance, const sluice_record *records, uint32_t count,
                             const sluice_emitter *out);
    /* [worker, started] End of input: emit what is buffered, make output
     * durable. The emitter accepts emit(..., SLUICE_NO_INPUT, ...). May be
     * NULL. */
    sluice_status (*flush)(void *instance, const sluice_emitter *out);
    /* [control, started] Release resources. May be NULL. */
    sluice_status (*stop)(void *instance);
    /* [control, any state] Free the instance. Must not be NULL. */
    void (*destroy)(void *instance);
    /* [same thread as the failed call] The message for the last non-OK
     * status, valid until the next call on the instance. May be NULL. */
    const char *(*last_error)(void *instance);
    /* [any] Plugin extension by versioned id, or NULL. May be NULL. */
    const void *(*get_extension)(void *instance, const char *id);
} sluice_stage_descriptor;

/* ------------------------------------------------------------------------ */
/* The entry                                                                */
/* ------------------------------------------------------------------------ */

typedef struct sluice_entry {
    uint16_t abi_major;   /* SLUICE_ABI_MAJOR the plugin was built with */
    uint16_t abi_minor;   /* SLUICE_ABI_MINOR the plugin was built with */
    uint32_t struct_size; /* sizeof(sluice_entry) */
    uint32_t stage_count;
    /* stage_count pointers to static descriptors. */
    const sluice_stage_descriptor *const *stages;
} sluice_entry;

/* ------------------------------------------------------------------------ */
/* Plugin extensions (returned by sluice_stage_descriptor.get_extension)     */
/* ------------------------------------------------------------------------ */

/* "sluice.outputs/1": the outputs of an instance whose stage declares
 * SLUICE_CAP_CONFIG_OUTPUTS. [control, created] Names are NUL-terminated and
 * valid until destroy; index 0 is where forward(i, 0) goes. */
#define SLUICE_EXT_OUTPUTS "sluice.outputs/1"
typedef struct sluice_outputs_ext {
    uint32_t struct_size; /* sizeof(sluice_outputs_ext) */
    uint32_t reserved;
    uint32_t (*count)(void *instance);
    const char *(*name)(void *instance, uint32_t index);
} sluice_outputs_ext;

/* "sluice.checkpoint/1": an extractor that can resume where an earlier run
 * stopped (at-least-once delivery, when the manifest sets state_dir).
 *
 * After every pull the host asks position() for "where reading resumes once
 * everything emitted so far is safe". It keeps that text with the pull's
 * records and saves it in the state file once every record of that pull and
 * of all earlier pulls has been loaded, dead-lettered or dropped by rule on
 * every branch it went down. On the next run it hands the last saved text to
 * restore() before start(), and the extractor carries on from there: records
 * after it may be read twice (a crash between loading and saving), records
 * before it never again.
 *
 * position is only asked of instances that are not shared between workers
 * (no SLUICE_CAP_CONCURRENT with threads > 1); each worker's instance has
 * its own position, and a saved state only restores a stage run with the
 * same number of workers. */
#define SLUICE_EXT_CHECKPOINT "sluice.checkpoint/1"
typedef struct sluice_checkpoint_ext {
    uint32_t struct_size; /* sizeof(sluice_checkpoint_ext) */
    uint32_t reserved;
    /* [worker, started] The position after the last pull: NUL-terminated
     * text (JSON is a good choice), valid until the next call on the
     * instance. NULL or "" means "cannot say": nothing is saved for it. */
    const char *(*position)(void *instance);
    /* [control, created] Resume after `position` (a text this plugin's
     * position() once returned), before start. SLUICE_ERROR with last_error
     * when it cannot (the text is not one it understands); the run then
     * stops with that message rather than silently reading from the start. */
    sluice_status (*restore)(void *instance, const char *position, size_t position_len);
} sluice_checkpoint_ext;

/* "sluice.acknowledged/1" (since ABI 1.1): an extractor that wants to hear
 * when its records are delivered, for instance to confirm them to the
 * client that sent them (an HTTP endpoint answering only once its records
 * are safe). Needs sluice.checkpoint/1: positions are the texts its
 * position() returned.
 *
 * acknowledged(position) says that everything the instance emitted up to
 * `position` has been loaded, dead-lettered or dropped by rule on every
 * branch it went down (the same rule as for saving state). The host calls it
 * whether or not the run keeps state, in order of positions, at most once
 * for each, possibly skipping some (several pulls completing at once give
 * only the last position), from any thread, between start and stop. It must
 * be quick and thread-safe and must not call the host. A position whose
 * records failed under the `fail` policy is never acknowledged. */
#define SLUICE_EXT_ACKNOWLEDGED "sluice.acknowledged/1"
typedef struct sluice_acknowledged_ext {
    uint32_t struct_size; /* sizeof(sluice_acknowledged_ext) */
    uint32_t reserved;
    void (*acknowledged)(void *instance, const char *position, size_t position_len);
} sluice_acknowledged_ext;

/* "sluice.delivery/1": when the records a loader (or any stage that keeps
 * records across calls) has accepted are durable.
 *
 * Without this extension the host assumes the safe answer: only once flush
 * returns SLUICE_OK, so the records of a run are acknowledged at its end (a
 * file loader that renames a temp file into place, a loader that buffers).
 * A stage whose records are durable when process returns SLUICE_OK (it wrote
 * and synced them, or committed a transaction) returns 1 from
 * durable_on_process; its records are then acknowledged batch by batch, which
 * long-running and real-time pipelines need. */
#define SLUICE_EXT_DELIVERY "sluice.delivery/1"
typedef struct sluice_delivery_ext {
    uint32_t struct_size; /* sizeof(sluice_delivery_ext) */
    uint32_t reserved;
    int32_t (*durable_on_process)(void *instance); /* [control, created] 1 or 0 */
} sluice_delivery_ext;

/* "sluice.settle/1" (since ABI 1.5): a loader that lets its destination
 * commit one call's records while the next call's are being written (a
 * database COMMIT sent without waiting for its answer), so that the two
 * overlap instead of taking turns.
 *
 * With it (and durable_on_process answering 1) the promise of a process
 * call that returns SLUICE_OK is "accepted": the records are durable once
 * the NEXT process call on the same instance returns anything but
 * SLUICE_FATAL, or once settle returns SLUICE_OK. The host acknowledges
 * them only then; an exactly-once loader stores each call's marker with
 * that call's records, as always.
 *
 * - settle  [worker, started] Wait until everything accepted so far is
 *           durable. The host calls it when the instance's input has been
 *           idle for a few milliseconds (so a trickle is acknowledged
 *           promptly), before flush, and before the instance is replaced
 *           or stopped in a live reload.
 *
 * A commit that fails after its call returned cannot be given back to that
 * call: report it as SLUICE_FATAL (with last_error naming what failed) from
 * the next process call or from settle. The run then stops with none of
 * those records acknowledged, and a restart reads them again.
 *
 * The host honours the deferral on an instance of its own (one per worker,
 * in process). It calls settle after every process call on an instance
 * shared by several workers (SLUICE_CAP_CONCURRENT) and in an isolated
 * worker process, so the plugin needs no second code path. */
#define SLUICE_EXT_SETTLE "sluice.settle/1"
typedef struct sluice_settle_ext {
    uint32_t struct_size; /* sizeof(sluice_settle_ext) */
    uint32_t reserved;
    sluice_status (*settle)(void *instance);
} sluice_settle_ext;

/* "sluice.exactly_once/1" (since ABI 1.2): a loader that can store a short
 * text, the host's MARKER, atomically with the records of a batch (in the
 * same database transaction; for a file, a side log that a restart uses to
 * cut the file back). With it, and a state_dir, a run killed at any point and
 * started again leaves every record in the destination exactly once.
 *
 * The marker says which extractor pulls the destination holds; it is opaque
 * to the plugin (store and return it byte for byte, never parse it). The
 * host uses it only for a loader that runs on one worker, receives batches in
 * extraction order from a single extractor, and receives no dead letters;
 * anywhere else it calls process as usual (at least once).
 *
 * - recover   [control, started] Before the first batch: bring the
 *             destination back to what its last durable marker covers (a
 *             file: cut off what was written after it) and set *marker to
 *             that marker (NUL-terminated, valid until the next call), or to
 *             NULL or "" when the destination holds no marker yet. The host
 *             then skips the pulls the destination already holds when the
 *             extractor reads them again. Anything but SLUICE_OK (with
 *             last_error) fails the run before it reads anything.
 * - process_marked  [worker, started] Exactly process, plus: when it returns
 *             SLUICE_OK, the records it accepted are durable and `marker` is
 *             stored with them: durable too, or (with sync_markers) durable
 *             at the next sync_markers; if it fails, neither is stored. Never
 *             keep a marker whose records are not durable.
 * - sync_markers  [any thread, started, thread-safe] Optional (NULL: markers
 *             are durable when process_marked returns). Makes every marker
 *             stored so far durable. The host calls it before each save of
 *             its state, and after every batch when a source confirms
 *             delivery to its clients, so a plugin whose markers live apart
 *             from its records (a file's side log) syncs them once per save
 *             instead of once per batch. */
#define SLUICE_EXT_EXACTLY_ONCE "sluice.exactly_once/1"
typedef struct sluice_exactly_once_ext {
    uint32_t struct_size; /* sizeof(sluice_exactly_once_ext) */
    uint32_t reserved;
    sluice_status (*recover)(void *instance, const char **marker);
    sluice_status (*process_marked)(void *instance, const sluice_record *records, uint32_t count,
                                    const sluice_emitter *out, const char *marker, size_t marker_len);
    sluice_status (*sync_markers)(void *instance);
} sluice_exactly_once_ext;

/* "sluice.resources/1" (since ABI 1.2): what an instance reads and writes,
 * so that `sluice validate` (and every run) can refuse a pipeline whose
 * loader would write what one of its extractors reads: its own input,
 * overwritten or appended to while it is being read.
 *
 * resources  [control, created] A NUL-terminated JSON object, valid until the
 *            next call on the instance:
 *              {"reads":  [{"uri": "file:///data/in/orders-*.csv", "config": "path"}],
 *               "writes": [{"uri": "file:///data/out.ndjson", "config": "path"}]}
 *            "uri" names the resource: file:///ABSOLUTE/PATH (reads may use
 *            glob patterns; a path ending in "/" is everything under that
 *            directory), sqlite:///ABSOLUTE/PATH#TABLE, or any scheme of the
 *            plugin's own (compared as text). "config" is the config key it
 *            comes from, for the message. No side effects: nothing is
 *            opened. NULL means nothing to declare. */
#define SLUICE_EXT_RESOURCES "sluice.resources/1"

/* "sluice.preflight/1" (since ABI 1.4): checks that what an instance needs
 * is there, without changing anything, so that a run fails before it reads
 * anything rather than halfway: input paths match files, output directories
 * exist and may be written, a database is reachable and the table may be
 * read or written, an endpoint answers. `sluice validate --check` and every
 * `sluice run` call it once per stage, on a created instance (not started).
 *
 * check  [control, created] NULL when all is well, else a NUL-terminated
 *        text, one problem per line, each "FIELD: what is wrong" as for
 *        create's errors (the host prefixes "FILE: /stages/N/config/"),
 *        valid until the next call on the instance. It may connect and
 *        read (briefly: a few seconds at most) but must not create, write
 *        or delete anything. */
#define SLUICE_EXT_PREFLIGHT "sluice.preflight/1"

/* "sluice.metrics/1" (since ABI 1.3): the metrics a stage reports through
 * counter_add, declared so that the host can show them, in the report and
 * the run summary, without knowing the plugin. [control, created] Static
 * data, valid for the library's life.
 * - metrics  each metric: its counter_add name, kind, unit and help.
 *            SLUICE_METRIC_COUNTER values are summed over the stage's
 *            instances; SLUICE_METRIC_GAUGE is a level (a latency
 *            percentile): each counter_add reports the current value and
 *            the host keeps the largest reported.
 * - ratios   derived values numerator / denominator (e.g. the share of
 *            records enriched), shown under their name beside the stage's
 *            counters.
 * - summary  optional: the stage's line in the run summary. "{name}" is
 *            replaced by a metric's value (a counter never added to is 0),
 *            "{name:.3f}" by a ratio's with three decimals. '|' separates
 *            parts: a part naming a value the run does not have (a gauge
 *            never reported, a ratio over 0) is left out, and without its
 *            first part there is no line. NULL: no line. */
#define SLUICE_METRIC_COUNTER 0u
#define SLUICE_METRIC_GAUGE 1u

typedef struct sluice_metric {
    const char *name; /* as given to counter_add */
    uint32_t kind;    /* SLUICE_METRIC_COUNTER or SLUICE_METRIC_GAUGE */
    uint32_t reserved;
    const char *unit; /* "ms", "tokens", "" */
    const char *help; /* one line */
} sluice_metric;

typedef struct sluice_metric_ratio {
    const char *name;        /* e.g. "enrichment_rate" */
    const char *numerator;   /* a metric's name */
    const char *denominator; /* a metric's name */
    const char *help;
} sluice_metric_ratio;

typedef struct sluice_metrics_ext {
    uint32_t struct_size; /* sizeof(sluice_metrics_ext) */
    uint32_t metric_count;
    const sluice_metric *metrics;
    uint32_t ratio_count;
    uint32_t reserved;
    const sluice_metric_ratio *ratios;
    const char *summary; /* may be NULL */
} sluice_metrics_ext;

#define SLUICE_EXT_METRICS "sluice.metrics/1"

/* ------------------------------------------------------------------------ */
/* Host extensions (returned by sluice_host.get_extension)                   */
/* ------------------------------------------------------------------------ */

/* "sluice.drop/1" (since ABI 1.3): the emitter's "dropped on purpose".
 * - drop  [worker, during the call that got `out`] Input record
 *         `input_index` is deliberately not passed on (a filter said no).
 *         It is counted as dropped, not as an error, and no longer
 *         unaccounted (see 8). SLUICE_ERROR for an index out of range. */
typedef struct sluice_drop_ext {
    uint32_t struct_size; /* sizeof(sluice_drop_ext) */
    uint32_t reserved;
    sluice_status (*drop)(const sluice_emitter *out, uint32_t input_index);
} sluice_drop_ext;

#define SLUICE_EXT_DROP "sluice.drop/1"
typedef struct sluice_resources_ext {
    uint32_t struct_size; /* sizeof(sluice_resources_ext) */
    uint32_t reserved;
    const char *(*resources)(void *instance);
} sluice_resources_ext;

typedef struct sluice_preflight_ext {
    uint32_t struct_size; /* sizeof(sluice_preflight_ext) */
    uint32_t reserved;
    const char *(*check)(void *instance);
} sluice_preflight_ext;

/* The function every plugin exports, and its type. */
typedef const sluice_entry *(*sluice_entry_fn)(void);

/* ------------------------------------------------------------------------ */
/* Layout checks: these sizes are part of ABI 1 on LP64 platforms.           */
/* ------------------------------------------------------------------------ */
#if defined(__LP64__) || defined(_LP64)
#if defined(__cplusplus)
#define SLUICE_STATIC_ASSERT(c, m) static_assert(c, m)
#elif defined(__STDC_VERSION__) && __STDC_VERSION__ >= 201112L
#define SLUICE_STATIC_ASSERT(c, m) _Static_assert(c, m)
#else /* C99: a negative array size fails the build */
#define SLUICE_STATIC_ASSERT_JOIN2(a, b) a##b
#define SLUICE_STATIC_ASSERT_JOIN(a, b) SLUICE_STATIC_ASSERT_JOIN2(a, b)
#define SLUICE_STATIC_ASSERT(c, m) \
    typedef char SLUICE_STATIC_ASSERT_JOIN(sluice_static_assert_, __LINE__)[(c) ? 1 : -1]
#endif
SLUICE_STATIC_ASSERT(sizeof(sluice_attr) == 32, "sluice_attr layout changed");
SLUICE_STATIC_ASSERT(sizeof(sluice_record) == 48, "sluice_record layout changed");
SLUICE_STATIC_ASSERT(sizeof(sluice_host) == 56, "sluice_host layout changed");
SLUICE_STATIC_ASSERT(sizeof(sluice_emitter) == 48, "sluice_emitter layout changed");
SLUICE_STATIC_ASSERT(sizeof(sluice_create_args) == 72, "sluice_create_args layout changed");
SLUICE_STATIC_ASSERT(sizeof(sluice_stage_descriptor) == 136,
                     "sluice_stage_descriptor layout changed");
SLUICE_STATIC_ASSERT(sizeof(sluice_entry) == 24, "sluice_entry layout changed");
SLUICE_STATIC_ASSERT(sizeof(sluice_outputs_ext) == 24, "sluice_outputs_ext layout changed");
SLUICE_STATIC_ASSERT(sizeof(sluice_checkpoint_ext) == 24, "sluice_checkpoint_ext layout changed");
SLUICE_STATIC_ASSERT(sizeof(sluice_acknowledged_ext) == 16, "sluice_acknowledged_ext layout changed");
SLUICE_STATIC_ASSERT(sizeof(sluice_delivery_ext) == 16, "sluice_delivery_ext layout changed");
SLUICE_STATIC_ASSERT(sizeof(sluice_exactly_once_ext) == 32, "sluice_exactly_once_ext layout changed");
SLUICE_STATIC_ASSERT(sizeof(sluice_settle_ext) == 16, "sluice_settle_ext layout changed");
SLUICE_STATIC_ASSERT(sizeof(sluice_resources_ext) == 16, "sluice_resources_ext layout changed");
SLUICE_STATIC_ASSERT(sizeof(sluice_preflight_ext) == 16, "sluice_preflight_ext layout changed");
SLUICE_STATIC_ASSERT(sizeof(sluice_drop_ext) == 16, "sluice_drop_ext layout changed");
SLUICE_STATIC_ASSERT(sizeof(sluice_metric) == 32, "sluice_metric layout changed");
SLUICE_STATIC_ASSERT(sizeof(sluice_metric_ratio) == 32, "sluice_metric_ratio layout changed");
SLUICE_STATIC_ASSERT(sizeof(sluice_metrics_ext) == 40, "sluice_metrics_ext layout changed");
#endif

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* SLUICE_PLUGIN_H */
