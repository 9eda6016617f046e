/* A transformer written in plain C99 against plugin.h only: no C++ runtime.
 * It adds "tagged_by":"c" to every JSON object record and forwards anything
 * else unchanged. Config: {"value": "..."} replaces "c" (a plain string,
 * parsed crudely: this is a test plugin, not an example of config parsing).
 * Built again with C_TAG_VERSION and C_TAG_VALUE for the live plugin swap
 * tests: two versions of one plugin that tag records with their version. */
#include <sluice/plugin.h>

#ifndef C_TAG_VERSION
#define C_TAG_VERSION "1.0.0"
#endif
#ifndef C_TAG_VALUE
#define C_TAG_VALUE "c"
#define C_TAG_SCHEMA_DEFAULT "from-the-schema"
#else
#define C_TAG_SCHEMA_DEFAULT C_TAG_VALUE
#endif

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct c_tag {
    char value[64];
    char *buf;
    size_t cap;
    char error[128];
} c_tag;

static sluice_status tag_create(const sluice_create_args *args, void **instance) {
    c_tag *t = (c_tag *)calloc(1, sizeof *t);
    const char *v;
    if (!t) {
        snprintf(args->error, args->error_size, "out of memory");
        return SLUICE_ERROR;
    }
    strcpy(t->value, C_TAG_VALUE);
    v = strstr(args->config_json, "\"value\"");
    if (v) {
        const char *q1 = strchr(v + 7, '"'), *q2 = q1 ? strchr(q1 + 1, '"') : NULL;
        size_t n;
        if (!q1 || !q2 || (n = (size_t)(q2 - q1 - 1)) >= sizeof t->value) {
            snprintf(args->error, args->error_size, "value: expected a short string");
            free(t);
            return SLUICE_ERROR;
        }
        memcpy(t->value, q1 + 1, n);
        t->value[n] = 0;
    }
    *instance = t;
    return SLUICE_OK;
}

static void tag_destroy(void *instance) {
    c_tag *t = (c_tag *)instance;
    if (!t) return;
    free(t->buf);
    free(t);
}

static sluice_status tag_process(void *instance, const sluice_record *in, uint32_t n, const sluice_emitter *out) {
    c_tag *t = (c_tag *)instance;
    uint32_t i;
    for (i = 0; i < n; i++) {
        const sluice_record *r = &in[i];
        size_t len = r->payload_len, need;
        sluice_record rec;
        while (len > 0 && (r->payload[len - 1] == ' ' || r->payload[len - 1] == '\n')) len--;
        if (len < 2 || r->payload[0] != '{' || r->payload[len - 1] != '}') {
            out->forward(out, 0, i);
            continue;
        }
        need = len + strlen(t->value) + 32;
        if (need > t->cap) {
            char *b = (char *)realloc(t->buf, need);
            if (!b) {
                snprintf(t->error, sizeof t->error, "out of memory");
                return SLUICE_FATAL;
            }
            t->buf = b;
            t->cap = need;
        }
        memcpy(t->buf, r->payload, len - 1);
        len = len - 1 + (size_t)sprintf(t->buf + len - 1, "%s\"tagged_by\":\"%s\"}", len > 2 ? "," : "", t->value);
        rec = *r;
        rec.payload = t->buf;
        rec.payload_len = len;
        if (out->emit(out, 0, i, &rec) != SLUICE_OK) {
            snprintf(t->error, sizeof t->error, "emit refused");
            return SLUICE_ERROR;
        }
    }
    return SLUICE_OK;
}

static const char *tag_last_error(void *instance) { return instance ? ((c_tag *)instance)->error : ""; }

static const sluice_stage_descriptor tag_stage = {
    sizeof(sluice_stage_descriptor),
    SLUICE_KIND_TRANSFORMER,
    "c_tag",
    C_TAG_VERSION,
    "Adds \"tagged_by\" to JSON object records (a plugin in plain C)",
    /* The schema's default differs from the code's on purpose: built against
     * ABI 1.4 or later, bit 4 is SLUICE_CAP_CONFIG_DEFAULTS and the host fills
     * in "from-the-schema"; built against an older frozen header the same bit
     * means nothing, and the host must pass the config as written ("c"). */
    "{\"type\":\"object\",\"properties\":{\"value\":{\"type\":\"string\",\"default\":\"" C_TAG_SCHEMA_DEFAULT "\"}}}",
    (uint64_t)1 << 4,
    NULL,
    0,
    0,
    tag_create,
    NULL,
    NULL,
    tag_process,
    NULL,
    NULL,
    tag_destroy,
    tag_last_error,
    NULL,
};

static const sluice_stage_descriptor *const stages[] = {&tag_stage};
static const sluice_entry entry = {SLUICE_ABI_MAJOR, SLUICE_ABI_MINOR, sizeof(sluice_entry), 1, stages};

SLUICE_EXPORT const sluice_entry *sluice_plugin_entry(void) { return &entry; }
