/*
 * acme.kv_counter in C: named counters kept in the skill's storage.
 *
 *   increment  {"name": "visits"}  ->  {"name": "visits", "value": 1}   (then 2, 3, ...)
 *   read       {"name": "visits"}  ->  {"name": "visits", "value": <current, 0 if never set>}
 *
 * A counter lives at storage key "skills/counters/<name>" as decimal text. The manifest
 * declares write_roots = ["skills/counters"], so the host refuses any other key anyway; the
 * name check below gives a clear error instead of a bare INVALID/DENIED from the host.
 */
#define PALYRA_IMPLEMENTATION
#include "palyra.h"

#define NAME_MAX_LEN 32
#define KEY_PREFIX "skills/counters/"

/* [a-z0-9_][a-z0-9_-]{0,31}: a name is one storage path segment, never "..", "/" or empty.
 * (The host's own rule for a segment also forbids a leading '-'.) */
static bool valid_name(const char *name, int32_t len) {
    if (len < 1 || len > NAME_MAX_LEN) return false;
    for (int32_t i = 0; i < len; i++) {
        char c = name[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
                  (c == '-' && i > 0);
        if (!ok) return false;
    }
    return true;
}

/* Reads the input's "name" and builds the storage key. Returns 0 or a tool error (already
 * written to the output, so the caller just returns it). */
static int32_t counter_key(char *name, uint32_t name_cap, char *key, uint32_t key_cap) {
    char input[512];
    int32_t n = palyra_input(input, sizeof input);
    if (n < 0) return palyra_fail("input too large", n);
    int32_t name_len = palyra_json_get_string(input, (uint32_t)n, "name", name, name_cap);
    if (name_len == PALYRA_TOO_LARGE || (name_len >= 0 && !valid_name(name, name_len)))
        return palyra_fail("counter name must be 1-32 characters of [a-z0-9_-], not starting "
                           "with '-'",
                           PALYRA_INVALID);
    if (name_len < 0) return palyra_fail("input field 'name' must be a string", name_len);
    palyra_str k;
    palyra_str_init(&k, key, key_cap);
    palyra_str_append(&k, KEY_PREFIX);
    palyra_str_append_n(&k, name, (uint32_t)name_len);
    if (!palyra_str_ok(&k)) return palyra_fail("storage key too long", PALYRA_TOO_LARGE);
    return 0;
}

/* The stored value (0 when the key does not exist yet), or a tool error. */
static int32_t load_counter(const char *key, int64_t *value) {
    int32_t rc = palyra_storage_get(key);
    if (rc == PALYRA_NOT_FOUND) {
        *value = 0;
        return 0;
    }
    if (rc < 0) return palyra_fail("storage_get failed", rc);
    char text[32];
    int32_t n = palyra_result(text, sizeof text);
    if (n < 0) return palyra_fail("stored counter is not a number", PALYRA_INVALID);
    if (palyra_parse_int(text, (uint32_t)n, value) != PALYRA_OK || *value < 0)
        return palyra_fail("stored counter is not a number", PALYRA_INVALID);
    return 0;
}

static int32_t reply(const char *name, int64_t value) {
    char out[160];
    palyra_json_writer w;
    palyra_jw_init(&w, out, sizeof out);
    palyra_jw_begin_object(&w);
    palyra_jw_field_string(&w, "name", name);
    palyra_jw_field_int(&w, "value", value);
    palyra_jw_end_object(&w);
    int32_t rc = palyra_jw_output(&w);
    return rc < 0 ? palyra_fail("cannot write the output", rc) : 0;
}

PALYRA_TOOL(increment) {
    char name[NAME_MAX_LEN + 1], key[64];
    int64_t value = 0;
    int32_t rc = counter_key(name, sizeof name, key, sizeof key);
    if (rc != 0) return rc;
    if ((rc = load_counter(key, &value)) != 0) return rc;
    if (value == INT64_MAX) return palyra_fail("counter would overflow", PALYRA_TOO_LARGE);
    value += 1;

    char text[24];
    int32_t n = palyra_fmt_int(text, sizeof text, value);
    rc = palyra_storage_put(key, text, (uint32_t)n);
    if (rc != PALYRA_OK) return palyra_fail("storage_put failed", rc);
    return reply(name, value);
}

PALYRA_TOOL(read) {
    char name[NAME_MAX_LEN + 1], key[64];
    int64_t value = 0;
    int32_t rc = counter_key(name, sizeof name, key, sizeof key);
    if (rc != 0) return rc;
    if ((rc = load_counter(key, &value)) != 0) return rc;
    return reply(name, value);
}
