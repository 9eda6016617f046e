/*
 * sluice/plugin_json.h - JSON helpers for plugins written in C.
 *
 * Record payloads are NOT NUL-terminated (plugin.h, section 3), so strstr,
 * strtod and friends may read past their end. These functions take the
 * text and its length and never read outside it:
 *
 *   - read a top-level field of a JSON object (a payload or a config):
 *     sluice_json_get_string / _number / _bool / sluice_json_has;
 *   - build a JSON object, from scratch or as a copy of a record with
 *     fields added: sluice_json_builder.
 *
 * Why a header and not host services: the functions have no state and no
 * ABI to version; a plugin that copies this file keeps working with any
 * host, in process or in an isolated worker. Plain C99, static inline, only
 * <stddef.h>, <stdint.h>, <stdlib.h>, <string.h> and <stdio.h>.
 *
 * Reading looks at the top level only ("a.b" is a key, not a path), takes
 * the first occurrence of a key, and returns 0 when the text is not a JSON
 * object or the field is absent or of another type. It skips values without
 * building them, so it is cheap, but it does not validate the parts of the
 * text it skips.
 */
#ifndef SLUICE_PLUGIN_JSON_H
#define SLUICE_PLUGIN_JSON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- reading ------------------------------------------------------------ */

typedef struct sluice_json_cursor {
    const char *p, *end;
} sluice_json_cursor;

static inline void sluice_json_ws_(sluice_json_cursor *c) {
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r')) c->p++;
}

/* Skips a string starting at its opening quote; 0 when unterminated. */
static inline int sluice_json_skip_string_(sluice_json_cursor *c) {
    if (c->p >= c->end || *c->p != '"') return 0;
    for (c->p++; c->p < c->end; c->p++) {
        if (*c->p == '\\') {
            if (++c->p >= c->end) return 0;
        } else if (*c->p == '"') {
            c->p++;
            return 1;
        }
    }
    return 0;
}

/* Skips one value of any type; 0 when the text ends first. */
static inline int sluice_json_skip_value_(sluice_json_cursor *c) {
    int depth = 0;
    sluice_json_ws_(c);
    do {
        if (c->p >= c->end) return 0;
        switch (*c->p) {
        case '"':
            if (!sluice_json_skip_string_(c)) return 0;
            break;
        case '{':
        case '[':
            depth++;
            c->p++;
            break;
        case '}':
        case ']':
            if (depth == 0) return 0;
            depth--;
            c->p++;
            break;
        default:
            if (depth == 0) {
                /* a number or a literal: up to a delimiter */
                const char *start = c->p;
                while (c->p < c->end && *c->p != ',' && *c->p != '}' && *c->p != ']' && *c->p != ' ' &&
                       *c->p != '\t' && *c->p != '\n' && *c->p != '\r')
                    c->p++;
                return c->p > start;
            }
            c->p++;
        }
    } while (depth > 0);
    return 1;
}

/* Finds top-level `key`: *value and *value_len get the raw text of its
 * value. 1 when found. */
static inline int sluice_json_find(const char *json, size_t len, const char *key, const char **value,
                                   size_t *value_len) {
    sluice_json_cursor c;
    size_t key_len = strlen(key);
    if (!json) return 0;
    c.p = json;
    c.end = json + len;
    sluice_json_ws_(&c);
    if (c.p >= c.end || *c.p != '{') return 0;
    c.p++;
    for (;;) {
        const char *name;
        size_t name_len;
        const char *v;
        sluice_json_ws_(&c);
        if (c.p < c.end && *c.p == '}') return 0;
        if (c.p >= c.end || *c.p != '"') return 0;
        name = c.p + 1;
        if (!sluice_json_skip_string_(&c)) return 0;
        name_len = (size_t)(c.p - name - 1);
        sluice_json_ws_(&c);
        if (c.p >= c.end || *c.p != ':') return 0;
        c.p++;
        sluice_json_ws_(&c);
        v = c.p;
        if (!sluice_json_skip_value_(&c)) return 0;
        /* Keys are compared as written: a key with escapes does not match. */
        if (name_len == key_len && memcmp(name, key, key_len) == 0) {
            *value = v;
            *value_len = (size_t)(c.p - v);
            return 1;
        }
        sluice_json_ws_(&c);
        if (c.p < c.end && *c.p == ',') {
            c.p++;
            continue;
        }
        return 0;
    }
}

static inline int sluice_json_has(const char *json, size_t len, const char *key) {
    const char *v;
    size_t n;
    return sluice_json_find(json, len, key, &v, &n);
}

/* A number field into *out. 1 on success. */
static inline int sluice_json_get_number(const char *json, size_t len, const char *key, double *out) {
    const char *v;
    size_t n;
    char buf[64];
    char *stop;
    if (!sluice_json_find(json, len, key, &v, &n) || n == 0 || n >= sizeof buf) return 0;
    if (!(*v == '-' || (*v >= '0' && *v <= '9'))) return 0;
    memcpy(buf, v, n); /* strtod needs a terminated copy */
    buf[n] = 0;
    *out = strtod(buf, &stop);
    return *stop == 0;
}

/* A true/false field into *out (1 or 0). 1 on success. */
static inline int sluice_json_get_bool(const char *json, size_t len, const char *key, int *out) {
    const char *v;
    size_t n;
    if (!sluice_json_find(json, len, key, &v, &n)) return 0;
    if (n == 4 && memcmp(v, "true", 4) == 0) return *out = 1, 1;
    if (n == 5 && memcmp(v, "false", 5) == 0) return *out = 0, 1;
    return 0;
}

static inline int sluice_json_hex_(char h) {
    if (h >= '0' && h <= '9') return h - '0';
    if (h >= 'a' && h <= 'f') return h - 'a' + 10;
    if (h >= 'A' && h <= 'F') return h - 'A' + 10;
    return -1;
}

static inline size_t sluice_json_utf8_(uint32_t cp, char *out) {
    if (cp < 0x80) return out[0] = (char)cp, 1;
    if (cp < 0x800) return out[0] = (char)(0xC0 | (cp >> 6)), out[1] = (char)(0x80 | (cp & 0x3F)), 2;
    if (cp < 0x10000)
        return out[0] = (char)(0xE0 | (cp >> 12)), out[1] = (char)(0x80 | ((cp >> 6) & 0x3F)),
               out[2] = (char)(0x80 | (cp & 0x3F)), 3;
    return out[0] = (char)(0xF0 | (cp >> 18)), out[1] = (char)(0x80 | ((cp >> 12) & 0x3F)),
           out[2] = (char)(0x80 | ((cp >> 6) & 0x3F)), out[3] = (char)(0x80 | (cp & 0x3F)), 4;
}

/* A string field, unescaped, into buf (NUL-terminated). Returns its length
 * (which may contain NUL bytes from \u0000), or -1 when absent, not a
 * string, badly escaped, or longer than size - 1. */
static inline long sluice_json_get_string(const char *json, size_t len, const char *key, char *buf, size_t size) {
    const char *v, *end;
    size_t n, w = 0;
    if (!buf || size == 0 || !sluice_json_find(json, len, key, &v, &n) || n < 2 || *v != '"') return -1;
    end = v + n - 1; /* the closing quote */
    for (v++; v < end; v++) {
        char tmp[4];
        size_t k = 1;
        if (*v != '\\') {
            tmp[0] = *v;
        } else {
            if (++v >= end) return -1;
            switch (*v) {
            case '"': tmp[0] = '"'; break;
            case '\\': tmp[0] = '\\'; break;
            case '/': tmp[0] = '/'; break;
            case 'b': tmp[0] = '\b'; break;
            case 'f': tmp[0] = '\f'; break;
            case 'n': tmp[0] = '\n'; break;
            case 'r': tmp[0] = '\r'; break;
            case 't': tmp[0] = '\t'; break;
            case 'u': {
                uint32_t cp = 0;
                int i;
                if (end - v < 5) return -1;
                for (i = 1; i <= 4; i++) {
                    int h = sluice_json_hex_(v[i]);
                    if (h < 0) return -1;
                    cp = cp * 16 + (uint32_t)h;
                }
                v += 4;
                if (cp >= 0xD800 && cp <= 0xDBFF) { /* a surrogate pair */
                    uint32_t lo = 0;
                    if (end - v < 7 || v[1] != '\\' || v[2] != 'u') return -1;
                    for (i = 3; i <= 6; i++) {
                        int h = sluice_json_hex_(v[i]);
                        if (h < 0) return -1;
                        lo = lo * 16 + (uint32_t)h;
                    }
                    if (lo < 0xDC00 || lo > 0xDFFF) return -1;
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                    v += 6;
                } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
                    return -1;
                }
                k = sluice_json_utf8_(cp, tmp);
                break;
            }
            default: return -1;
            }
        }
        if (w + k >= size) return -1;
        memcpy(buf + w, tmp, k);
        w += k;
    }
    buf[w] = 0;
    return (long)w;
}

/* ---- building ----------------------------------------------------------- */

/* A growing JSON object. Start with sluice_json_begin (empty object) or
 * sluice_json_begin_from (a copy of an object, to add fields to), add
 * fields, then sluice_json_end: text in b->buf, b->len bytes. Any failure
 * (out of memory, not an object) sets b->failed and the rest is ignored.
 * Free b->buf with sluice_json_free. Keys are written as given: pass plain
 * ASCII keys (they are not escaped). */
typedef struct sluice_json_builder {
    char *buf;
    size_t len, cap;
    int fields; /* fields written so far */
    int failed;
} sluice_json_builder;

static inline void sluice_json_put_(sluice_json_builder *b, const char *s, size_t n) {
    if (b->failed) return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 256;
        char *p;
        while (cap < b->len + n + 1) cap *= 2;
        p = (char *)realloc(b->buf, cap);
        if (!p) {
            b->failed = 1;
            return;
        }
        b->buf = p;
        b->cap = cap;
    }
    memcpy(b->buf + b->len, s, n);
    b->len += n;
    b->buf[b->len] = 0;
}

static inline void sluice_json_begin(sluice_json_builder *b) {
    b->len = 0;
    b->fields = 0;
    b->failed = 0;
    sluice_json_put_(b, "{", 1);
}

/* Copies object `json` without its closing brace, to add fields to. */
static inline void sluice_json_begin_from(sluice_json_builder *b, const char *json, size_t len) {
    const char *end = json + len;
    const char *p = json;
    sluice_json_begin(b);
    b->len = 0;
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) p++;
    while (end > p && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\n' || end[-1] == '\r')) end--;
    if (end - p < 2 || *p != '{' || end[-1] != '}') {
        b->failed = 1;
        return;
    }
    sluice_json_put_(b, p, (size_t)(end - 1 - p));
    {
        /* Whether the object already has a field. */
        const char *q = p + 1;
        while (q < end - 1 && (*q == ' ' || *q == '\t' || *q == '\n' || *q == '\r')) q++;
        b->fields = q < end - 1;
    }
}

static inline void sluice_json_key_(sluice_json_builder *b, const char *key) {
    if (b->fields++) sluice_json_put_(b, ",", 1);
    sluice_json_put_(b, "\"", 1);
    sluice_json_put_(b, key, strlen(key));
    sluice_json_put_(b, "\":", 2);
}

/* A string field; `value` need not be NUL-terminated and is escaped. */
static inline void sluice_json_add_string(sluice_json_builder *b, const char *key, const char *value, size_t len) {
    size_t i;
    sluice_json_key_(b, key);
    sluice_json_put_(b, "\"", 1);
    for (i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)value[i];
        char esc[8];
        if (ch == '"' || ch == '\\') {
            esc[0] = '\\';
            esc[1] = (char)ch;
            sluice_json_put_(b, esc, 2);
        } else if (ch < 0x20) {
            snprintf(esc, sizeof esc, "\\u%04x", ch);
            sluice_json_put_(b, esc, 6);
        } else {
            sluice_json_put_(b, (const char *)&value[i], 1);
        }
    }
    sluice_json_put_(b, "\"", 1);
}

/* A number field (NaN and infinities become null: JSON has neither). */
static inline void sluice_json_add_number(sluice_json_builder *b, const char *key, double value) {
    char num[40];
    int n;
    sluice_json_key_(b, key);
    if (value != value || value > 1.7976931348623157e308 || value < -1.7976931348623157e308) {
        sluice_json_put_(b, "null", 4);
        return;
    }
    /* The shortest of 15 or 17 digits that reads back as the same number. */
    n = snprintf(num, sizeof num, "%.15g", value);
    if (strtod(num, NULL) != value) n = snprintf(num, sizeof num, "%.17g", value);
    sluice_json_put_(b, num, (size_t)n);
}

static inline void sluice_json_add_bool(sluice_json_builder *b, const char *key, int value) {
    sluice_json_key_(b, key);
    sluice_json_put_(b, value ? "true" : "false", value ? 4 : 5);
}

/* A field whose value is already JSON text (an object, an array). */
static inline void sluice_json_add_raw(sluice_json_builder *b, const char *key, const char *json, size_t len) {
    sluice_json_key_(b, key);
    sluice_json_put_(b, json, len);
}

static inline void sluice_json_end(sluice_json_builder *b) { sluice_json_put_(b, "}", 1); }

static inline void sluice_json_free(sluice_json_builder *b) {
    free(b->buf);
    b->buf = NULL;
    b->len = b->cap = 0;
}

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* SLUICE_PLUGIN_JSON_H */
