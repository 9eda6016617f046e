/* Example validator in plain C: a quality gate on an e-mail field. Records
 * whose field holds a string with one '@' and a '.' after it pass; the others
 * are rejected with the reason, and go to the "fail" output when something
 * reads it.
 *
 * Config: {"field": "email"}
 * A validator lists its outputs itself: {"pass", "fail"}. Every input is
 * forwarded to "pass" or rejected: none is left unaccounted. */
#include <sluice/plugin.h>
#include <sluice/plugin_json.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct gate {
    char field[64];
    char value[512]; /* the field's value, unescaped */
} gate;

static sluice_status gate_create(const sluice_create_args *args, void **instance) {
    gate *g = (gate *)calloc(1, sizeof *g);
    if (!g) return SLUICE_ERROR;
    /* The host fills in the schema's default (SLUICE_CAP_CONFIG_DEFAULTS). */
    if (sluice_json_get_string(args->config_json, args->config_len, "field", g->field, sizeof g->field) < 1) {
        snprintf(args->error, args->error_size, "field: expected a name of at most %d bytes", (int)sizeof g->field - 1);
        free(g);
        return SLUICE_ERROR;
    }
    *instance = g;
    return SLUICE_OK;
}

static void gate_destroy(void *instance) { free(instance); }

/* Why `value` is not an e-mail address, or NULL. */
static const char *why_not(const char *value, long len) {
    const char *at = len > 0 ? memchr(value, '@', (size_t)len) : NULL;
    if (len <= 0) return "empty";
    if (!at || at == value) return "no name before an @";
    if (memchr(at + 1, '@', (size_t)(value + len - at - 1))) return "more than one @";
    if (!memchr(at + 1, '.', (size_t)(value + len - at - 1))) return "no dot in the domain";
    return NULL;
}

static sluice_status gate_process(void *instance, const sluice_record *in, uint32_t n, const sluice_emitter *out) {
    gate *g = (gate *)instance;
    uint32_t i;
    for (i = 0; i < n; i++) {
        char reason[160];
        const char *why;
        long len = sluice_json_get_string(in[i].payload, in[i].payload_len, g->field, g->value, sizeof g->value);
        why = len < 0 ? (sluice_json_has(in[i].payload, in[i].payload_len, g->field) ? "not a string (or too long)"
                                                                                     : "missing")
                      : why_not(g->value, len);
        if (!why) {
            out->forward(out, 0, i); /* "pass" */
            continue;
        }
        snprintf(reason, sizeof reason, "%s: %s", g->field, why);
        out->reject(out, i, reason, strlen(reason));
    }
    return SLUICE_OK;
}

static const char *gate_last_error(void *instance) {
    (void)instance;
    return "";
}

static const char *const gate_outputs[] = {"pass", "fail"};

static const sluice_stage_descriptor gate_stage = {
    sizeof(sluice_stage_descriptor),
    SLUICE_KIND_VALIDATOR,
    "email_gate",
    "1.0.0",
    "Rejects records whose e-mail field is missing or not an address",
    "{\"type\":\"object\",\"properties\":{"
    "\"field\":{\"type\":\"string\",\"minLength\":1,\"default\":\"email\",\"description\":\"The field to check\"}}}",
    SLUICE_CAP_CONFIG_DEFAULTS,
    gate_outputs,
    2,
    0,
    gate_create,
    NULL,
    NULL,
    gate_process,
    NULL,
    NULL,
    gate_destroy,
    gate_last_error,
    NULL,
};

static const sluice_stage_descriptor *const stages[] = {&gate_stage};
static const sluice_entry entry = {SLUICE_ABI_MAJOR, SLUICE_ABI_MINOR, sizeof(sluice_entry), 1, stages};

SLUICE_EXPORT const sluice_entry *sluice_plugin_entry(void) { return &entry; }
