/* Example enricher in plain C: adds "amount_band": "large" or "small" to
 * each JSON record by comparing a number field with a threshold.
 *
 * Config: {"field": "amount", "threshold": 100}
 * A record whose field is not a number fails (the stage's on_error decides
 * what happens to it); every other record is emitted with the band added.
 * Built against the installed SDK: see CMakeLists.txt beside it. */
#include <sluice/plugin.h>
#include <sluice/plugin_json.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct band {
    char field[64];
    double threshold;
    char error[256];
    sluice_json_builder out; /* reused from record to record */
} band;

static sluice_status band_create(const sluice_create_args *args, void **instance) {
    band *b = (band *)calloc(1, sizeof *b);
    if (!b) return SLUICE_ERROR;
    /* SLUICE_CAP_CONFIG_DEFAULTS (below): the host has checked the config
     * against the schema and filled in its defaults, so both fields are
     * there; the defaults are written once, in the schema. */
    if (sluice_json_get_string(args->config_json, args->config_len, "field", b->field, sizeof b->field) < 1) {
        snprintf(args->error, args->error_size, "field: expected a name of at most %d bytes", (int)sizeof b->field - 1);
        free(b);
        return SLUICE_ERROR;
    }
    if (!sluice_json_get_number(args->config_json, args->config_len, "threshold", &b->threshold)) {
        snprintf(args->error, args->error_size, "threshold: expected a number");
        free(b);
        return SLUICE_ERROR;
    }
    *instance = b;
    return SLUICE_OK;
}

static void band_destroy(void *instance) {
    band *b = (band *)instance;
    if (!b) return;
    sluice_json_free(&b->out);
    free(b);
}

static sluice_status band_process(void *instance, const sluice_record *in, uint32_t n, const sluice_emitter *out) {
    band *b = (band *)instance;
    uint32_t i;
    for (i = 0; i < n; i++) {
        double value;
        sluice_record rec;
        const char *name;
        if (!sluice_json_get_number(in[i].payload, in[i].payload_len, b->field, &value)) {
            char why[128];
            int len = snprintf(why, sizeof why, "amount_band: field %s is not a number", b->field);
            out->fail(out, i, why, (size_t)len);
            continue;
        }
        name = value >= b->threshold ? "large" : "small";
        sluice_json_begin_from(&b->out, in[i].payload, in[i].payload_len);
        sluice_json_add_string(&b->out, "amount_band", name, strlen(name));
        sluice_json_end(&b->out);
        if (b->out.failed) {
            out->fail(out, i, "amount_band: the record is not a JSON object", 44);
            continue;
        }
        rec = in[i]; /* keeps the id, content type and attributes */
        rec.payload = b->out.buf;
        rec.payload_len = b->out.len;
        if (out->emit(out, 0, i, &rec) != SLUICE_OK) {
            snprintf(b->error, sizeof b->error, "the host refused an emit");
            return SLUICE_ERROR;
        }
    }
    return SLUICE_OK;
}

static const char *band_last_error(void *instance) { return instance ? ((band *)instance)->error : ""; }

static const sluice_stage_descriptor band_stage = {
    sizeof(sluice_stage_descriptor),
    SLUICE_KIND_ENRICHER,
    "amount_band",
    "1.0.0",
    "Adds amount_band (large or small) by comparing a number field with a threshold",
    "{\"type\":\"object\",\"properties\":{"
    "\"field\":{\"type\":\"string\",\"minLength\":1,\"default\":\"amount\",\"description\":\"The number field to read\"},"
    "\"threshold\":{\"type\":\"number\",\"default\":100,\"description\":\"From this value on, large\"}}}",
    SLUICE_CAP_CONFIG_DEFAULTS,
    NULL,
    0,
    0,
    band_create,
    NULL,
    NULL,
    band_process,
    NULL,
    NULL,
    band_destroy,
    band_last_error,
    NULL,
};

static const sluice_stage_descriptor *const stages[] = {&band_stage};
static const sluice_entry entry = {SLUICE_ABI_MAJOR, SLUICE_ABI_MINOR, sizeof(sluice_entry), 1, stages};

SLUICE_EXPORT const sluice_entry *sluice_plugin_entry(void) { return &entry; }
