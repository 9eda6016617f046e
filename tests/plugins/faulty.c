/* A transformer that misbehaves on purpose, for the tests of what the host
 * does about plugins it cannot trust. Plain C against plugin.h only.
 *
 * Config (parsed crudely: a test plugin): {"fault": F, "match": S, "nth": N}
 * Records are forwarded unchanged unless the fault says otherwise. The fault
 * hits a record whose payload contains S ("match"), or the Nth record this
 * instance sees (1-based, "nth"):
 *   crash              writes through a null pointer (SIGSEGV)
 *   abort              abort() (SIGABRT)
 *   exit               exit(4) from process
 *   exit_in_start      exit(3) from start
 *   loop               never returns
 *   allocate           touches 2 GiB of memory, then frees it
 *   leak               every call leaks 4 MB (touched)
 *   bad_output         emits the record on output 7 (there is one) and ignores the error
 *   forward_out_of_range  forwards index count instead of the last record
 *   never_forward_last    forwards every record but the last of each call
 *   garbage_status     returns 12345 from the call
 *   drop               drops the record on purpose (sluice.drop/1): a well-behaved filter
 *   log                logs "faulty: saw record ID" (warn) and counts "faulty_hits"
 *   wait_for_stop      waits until the host's stop_requested says so, then forwards
 */
#include <sluice/plugin.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct faulty {
    char fault[32];
    char match[128];
    long nth;
    long seen;
    const sluice_drop_ext *drop;
    const sluice_host *host;
} faulty;

static void config_string(const char *json, const char *key, char *out, size_t size) {
    char pattern[64];
    const char *v, *end;
    snprintf(pattern, sizeof pattern, "\"%s\":\"", key);
    v = strstr(json, pattern);
    out[0] = 0;
    if (!v) return;
    v += strlen(pattern);
    end = v;
    /* The host writes the config as compact JSON: a quote inside the
     * value is escaped with a backslash. */
    while (*end && !(*end == '"' && end[-1] != '\\')) end++;
    if ((size_t)(end - v) >= size) return;
    memcpy(out, v, (size_t)(end - v));
    out[end - v] = 0;
}

static sluice_status f_create(const sluice_create_args *args, void **instance) {
    faulty *f = (faulty *)calloc(1, sizeof *f);
    const char *n;
    if (!f) return SLUICE_ERROR;
    config_string(args->config_json, "fault", f->fault, sizeof f->fault);
    config_string(args->config_json, "match", f->match, sizeof f->match);
    /* The match is JSON text inside JSON: undo the escaped quotes. */
    {
        char *r = f->match, *w = f->match;
        for (; *r; r++)
            if (!(r[0] == '\\' && r[1] == '"')) *w++ = *r;
        *w = 0;
    }
    n = strstr(args->config_json, "\"nth\":");
    f->nth = n ? strtol(n + 6, NULL, 10) : 0;
    f->drop = (const sluice_drop_ext *)args->host->get_extension(args->host, SLUICE_EXT_DROP);
    f->host = args->host;
    *instance = f;
    return SLUICE_OK;
}

static sluice_status f_start(void *instance) {
    faulty *f = (faulty *)instance;
    if (strcmp(f->fault, "exit_in_start") == 0) exit(3);
    return SLUICE_OK;
}

static int hits(faulty *f, const sluice_record *r) {
    f->seen++;
    if (f->nth > 0 && f->seen == f->nth) return 1;
    if (!f->match[0]) return 0;
    /* payloads are not NUL-terminated: search within the length */
    {
        size_t m = strlen(f->match), i;
        for (i = 0; i + m <= r->payload_len; i++)
            if (memcmp(r->payload + i, f->match, m) == 0) return 1;
    }
    return 0;
}

static sluice_status f_process(void *instance, const sluice_record *in, uint32_t n, const sluice_emitter *out) {
    faulty *f = (faulty *)instance;
    const char *fault = f->fault;
    uint32_t i;
    if (strcmp(fault, "leak") == 0) {
        char *p = (char *)malloc(4 << 20);
        if (p) memset(p, 1, 4 << 20);
    }
    for (i = 0; i < n; i++) {
        int hit = hits(f, &in[i]);
        if (strcmp(fault, "forward_out_of_range") == 0 && i + 1 == n) {
            out->forward(out, 0, n); /* one past the end: refused, ignored */
            continue;
        }
        if (strcmp(fault, "never_forward_last") == 0 && i + 1 == n) continue;
        if (hit) {
            if (strcmp(fault, "crash") == 0) *(volatile int *)0 = 1;
            if (strcmp(fault, "abort") == 0) abort();
            if (strcmp(fault, "exit") == 0) exit(4);
            if (strcmp(fault, "loop") == 0)
                for (;;) {
                    volatile int spin = 0;
                    (void)spin;
                }
            if (strcmp(fault, "allocate") == 0) {
                enum { chunk = 64 << 20, chunks = 32 };
                char *blocks[chunks];
                int k;
                for (k = 0; k < chunks; k++) {
                    blocks[k] = (char *)malloc(chunk);
                    if (blocks[k]) memset(blocks[k], 1, chunk);
                }
                for (k = 0; k < chunks; k++) free(blocks[k]);
            }
            if (strcmp(fault, "bad_output") == 0) {
                out->emit(out, 7, i, &in[i]); /* refused: there is one output */
                continue;
            }
            if (strcmp(fault, "garbage_status") == 0) return (sluice_status)12345;
            if (strcmp(fault, "log") == 0) {
                char line[64];
                int len = snprintf(line, sizeof line, "faulty: saw record %llu", (unsigned long long)in[i].id);
                f->host->log(f->host, SLUICE_LOG_WARN, line, (size_t)len);
                f->host->counter_add(f->host, "faulty_hits", 1);
            }
            if (strcmp(fault, "wait_for_stop") == 0)
                while (!f->host->stop_requested(f->host)) usleep(1000);
            if (strcmp(fault, "drop") == 0 && f->drop) {
                f->drop->drop(out, i);
                continue;
            }
        }
        out->forward(out, 0, i);
    }
    return SLUICE_OK;
}

static void f_destroy(void *instance) { free(instance); }

static const char *f_last_error(void *instance) {
    (void)instance;
    return "faulty: the fault struck";
}

/* Its one counter, declared (sluice.metrics/1). */
static const sluice_metric faulty_metrics[] = {
    {"faulty_hits", SLUICE_METRIC_COUNTER, 0, "records", "records the fault struck"}};
static const sluice_metrics_ext faulty_metrics_ext = {
    sizeof(sluice_metrics_ext), 1, faulty_metrics, 0, 0, NULL, "{faulty_hits} records struck"};

static const void *f_extension(void *instance, const char *id) {
    (void)instance;
    return strcmp(id, SLUICE_EXT_METRICS) == 0 ? &faulty_metrics_ext : NULL;
}

static const sluice_stage_descriptor faulty_stage = {
    sizeof(sluice_stage_descriptor),
    SLUICE_KIND_TRANSFORMER,
    "faulty",
    "1.0.0",
    "Misbehaves on purpose (tests of plugin containment)",
    "{\"type\":\"object\",\"properties\":{"
    "\"fault\":{\"type\":\"string\",\"description\":\"crash, abort, exit, exit_in_start, loop, allocate, leak, "
    "bad_output, forward_out_of_range, never_forward_last, garbage_status or drop\"},"
    "\"match\":{\"type\":\"string\",\"description\":\"the fault hits records whose payload contains this\"},"
    "\"nth\":{\"type\":\"integer\",\"description\":\"or the Nth record the instance sees\"}}}",
    0,
    NULL,
    0,
    0,
    f_create,
    f_start,
    NULL,
    f_process,
    NULL,
    NULL,
    f_destroy,
    f_last_error,
    f_extension,
};

/* --- faulty_source: an extractor that crashes once ------------------------
 * Config {"count": N, "crash_at": K}: emits {"id":1} .. {"id":N}, one pull
 * of up to max_records at a time, and resumes from a position (the next id)
 * through sluice.checkpoint/1. The instance that first reaches id K crashes
 * (SIGSEGV) in that pull; a restored instance does not crash. */
typedef struct source {
    long count, crash_at, next;
    char position[32];
} source;

static sluice_status s_create(const sluice_create_args *args, void **instance) {
    source *s = (source *)calloc(1, sizeof *s);
    const char *c, *k;
    if (!s) return SLUICE_ERROR;
    c = strstr(args->config_json, "\"count\":");
    k = strstr(args->config_json, "\"crash_at\":");
    s->count = c ? strtol(c + 8, NULL, 10) : 0;
    s->crash_at = k ? strtol(k + 11, NULL, 10) : 0;
    s->next = 1;
    *instance = s;
    return SLUICE_OK;
}

static sluice_status s_pull(void *instance, const sluice_emitter *out, uint32_t max, int32_t *end) {
    source *s = (source *)instance;
    uint32_t i;
    for (i = 0; i < max && s->next <= s->count; i++, s->next++) {
        char payload[48];
        sluice_record r;
        if (s->next == s->crash_at) *(volatile int *)0 = 1;
        memset(&r, 0, sizeof r);
        r.payload = payload;
        r.payload_len = (size_t)snprintf(payload, sizeof payload, "{\"id\":%ld}", s->next);
        out->emit(out, 0, SLUICE_NO_INPUT, &r);
    }
    *end = s->next > s->count;
    return SLUICE_OK;
}

static const char *s_position(void *instance) {
    source *s = (source *)instance;
    snprintf(s->position, sizeof s->position, "%ld", s->next);
    return s->position;
}

static sluice_status s_restore(void *instance, const char *position, size_t len) {
    source *s = (source *)instance;
    char buf[32];
    if (len == 0 || len >= sizeof buf) return SLUICE_ERROR;
    memcpy(buf, position, len);
    buf[len] = 0;
    s->next = strtol(buf, NULL, 10);
    s->crash_at = 0; /* a restored instance has its crash behind it */
    return SLUICE_OK;
}

static const sluice_checkpoint_ext source_checkpoint = {sizeof(sluice_checkpoint_ext), 0, s_position, s_restore};

static const void *s_extension(void *instance, const char *id) {
    (void)instance;
    return strcmp(id, SLUICE_EXT_CHECKPOINT) == 0 ? &source_checkpoint : NULL;
}

static const sluice_stage_descriptor source_stage = {
    sizeof(sluice_stage_descriptor),
    SLUICE_KIND_EXTRACTOR,
    "faulty_source",
    "1.0.0",
    "Emits {\"id\":1..count} and crashes once at id crash_at (tests of plugin containment)",
    "{\"type\":\"object\",\"properties\":{\"count\":{\"type\":\"integer\"},\"crash_at\":{\"type\":\"integer\"}}}",
    0,
    NULL,
    0,
    0,
    s_create,
    NULL,
    s_pull,
    NULL,
    NULL,
    NULL,
    f_destroy,
    f_last_error,
    s_extension,
};

static const sluice_stage_descriptor *const stages[] = {&faulty_stage, &source_stage};
static const sluice_entry entry = {SLUICE_ABI_MAJOR, SLUICE_ABI_MINOR, sizeof(sluice_entry), 2, stages};

SLUICE_EXPORT const sluice_entry *sluice_plugin_entry(void) { return &entry; }
