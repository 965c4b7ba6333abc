/*
 * palyra.h - C guest SDK for the Palyra data ABI v1 ("palyra:host@1").
 *
 * Header-only and freestanding: no libc, nothing but <stdint.h>, <stddef.h> and <stdbool.h>.
 * Build with sdk/c/build.py (clang --target=wasm32 -nostdlib -ffreestanding ...).
 *
 * Exactly ONE translation unit of a module must say
 *
 *     #define PALYRA_IMPLEMENTATION
 *     #include "palyra.h"
 *
 * to get the allocator's state and the memcpy/memmove/memset/memcmp symbols that clang may
 * emit calls to. Everything else is `static inline` and costs nothing unless used: a host
 * import that no code calls does not appear in the module, so a skill only imports (and the
 * audit only asks it to declare) the capabilities it really uses.
 *
 * Conventions (see docs/abi.md and docs/writing-skills-in-c.md):
 *   - Every function returning int32_t returns a length/count/status (>= 0) or a negative
 *     PALYRA_* code. Nothing here traps on bad input and nothing writes past a `cap`.
 *   - Buffers are (pointer, length) pairs; "cap" always includes room for a NUL terminator
 *     where the function promises one.
 *   - Each tool call runs in a fresh instance: static variables and the heap start from zero
 *     every call, so nothing leaks from one call to the next (use storage to persist).
 *
 * Licensed like the rest of the project (Apache-2.0). Copy it freely into your skill.
 */
#ifndef PALYRA_H
#define PALYRA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#if !defined(__wasm32__)
#error "palyra.h targets wasm32 only: build with sdk/c/build.py (clang --target=wasm32)"
#endif

#define PALYRA_SDK_VERSION "1.0.0"
#define PALYRA_HOST_MODULE "palyra:host@1"

/* ---- return codes -------------------------------------------------------------------------
 * -1 .. -7 come from the host (docs/abi.md). -100 and below are produced by this SDK only. */
#define PALYRA_OK 0
#define PALYRA_DENIED (-1)     /* capability, host, secret, storage root or channel not granted */
#define PALYRA_INVALID (-2)    /* malformed argument / malformed JSON */
#define PALYRA_NOT_FOUND (-3)  /* no such secret, storage key or JSON field */
#define PALYRA_TOO_LARGE (-4)  /* a size cap (host's or the caller's buffer) was hit */
#define PALYRA_UPSTREAM (-5)   /* the remote side failed */
#define PALYRA_TIMEOUT (-6)    /* the call's wall-clock budget ran out during a host call */
#define PALYRA_QUOTA (-7)      /* a per-call count or byte budget is used up */
#define PALYRA_NO_MEMORY (-100)  /* SDK: palyra_alloc could not grow linear memory */
#define PALYRA_WRONG_TYPE (-101) /* SDK: a JSON value has another type than asked for */

#define PALYRA_LOG_TRACE 0
#define PALYRA_LOG_DEBUG 1
#define PALYRA_LOG_INFO 2
#define PALYRA_LOG_WARN 3
#define PALYRA_LOG_ERROR 4

/* Nesting limit of the JSON reader and writer (objects + arrays). */
#define PALYRA_JSON_MAX_DEPTH 30

/* ---- tool exports --------------------------------------------------------------------------
 * PALYRA_TOOL(echo) { ... return 0; }  defines the C function palyra_tool_echo, exported as
 * "echo" with type () -> i32. Return 0 for success; anything else fails the call and whatever
 * the tool wrote to the output becomes the error message (use palyra_fail). The C name is
 * prefixed so a tool called `read` or `index` cannot collide with other symbols. For tool
 * names that are not C identifiers, use PALYRA_TOOL_NAMED(c_name, "export-name"). */
#define PALYRA_TOOL_NAMED(cname, export)                                                       \
    int32_t cname(void);                                                                       \
    __attribute__((export_name(export))) int32_t cname(void)
#define PALYRA_TOOL(name) PALYRA_TOOL_NAMED(palyra_tool_##name, #name)

/* ---- host imports (palyra:host@1) -----------------------------------------------------------
 * Pointers are offsets into this module's exported `memory`; lengths are unsigned 32-bit.
 * Signatures must stay exactly as docs/abi.md says: the sandbox refuses anything else at link
 * time and the audit flags it at install (wasm_import_policy). */
#define PALYRA__IMPORT(name) __attribute__((import_module(PALYRA_HOST_MODULE), import_name(name)))

PALYRA__IMPORT("input_len") int32_t palyra_host_input_len(void);
PALYRA__IMPORT("input_read") int32_t palyra_host_input_read(void *ptr, uint32_t len);
PALYRA__IMPORT("output_write") int32_t palyra_host_output_write(const void *ptr, uint32_t len);
PALYRA__IMPORT("log") int32_t palyra_host_log(int32_t level, const void *ptr, uint32_t len);
PALYRA__IMPORT("tool_id") int32_t palyra_host_tool_id(void *ptr, uint32_t len);
PALYRA__IMPORT("result_len") int32_t palyra_host_result_len(void);
PALYRA__IMPORT("result_read") int32_t palyra_host_result_read(void *ptr, uint32_t len);
PALYRA__IMPORT("clock_now_ms") int64_t palyra_host_clock_now_ms(void);
PALYRA__IMPORT("random_fill") int32_t palyra_host_random_fill(void *ptr, uint32_t len);
/* needs capabilities.http_egress_allowlist */
PALYRA__IMPORT("http_request") int32_t palyra_host_http_request(const void *req, uint32_t len);
/* needs capabilities.secrets */
PALYRA__IMPORT("secret_get") int32_t palyra_host_secret_get(const void *ref, uint32_t len);
/* need capabilities.filesystem read_roots or write_roots */
PALYRA__IMPORT("storage_get") int32_t palyra_host_storage_get(const void *key, uint32_t len);
PALYRA__IMPORT("storage_list") int32_t palyra_host_storage_list(const void *prefix, uint32_t len);
/* need capabilities.filesystem write_roots */
PALYRA__IMPORT("storage_put")
int32_t palyra_host_storage_put(const void *key, uint32_t key_len, const void *val,
                                uint32_t val_len);
PALYRA__IMPORT("storage_delete") int32_t palyra_host_storage_delete(const void *key, uint32_t len);
/* needs node_capabilities = ["channel:<name>"] */
PALYRA__IMPORT("channel_send")
int32_t palyra_host_channel_send(const void *ch, uint32_t ch_len, const void *msg,
                                 uint32_t msg_len);

/* ---- memory and strings ---------------------------------------------------------------------
 * With -mbulk-memory (build.py's default) these compile to single memory.copy/memory.fill
 * instructions; otherwise to plain loops that the optimiser may not turn back into calls. */
#if defined(__wasm_bulk_memory__)
#define PALYRA__NO_BUILTIN
#else
#define PALYRA__NO_BUILTIN __attribute__((no_builtin))
#endif

PALYRA__NO_BUILTIN static inline void *palyra_memcpy(void *dst, const void *src, uint32_t n) {
#if defined(__wasm_bulk_memory__)
    if (n) __builtin_memcpy(dst, src, n);
#else
    unsigned char *d = (unsigned char *)dst;
    const unsigned char *s = (const unsigned char *)src;
    while (n--) *d++ = *s++;
#endif
    return dst;
}

PALYRA__NO_BUILTIN static inline void *palyra_memmove(void *dst, const void *src, uint32_t n) {
#if defined(__wasm_bulk_memory__)
    if (n) __builtin_memmove(dst, src, n);
#else
    unsigned char *d = (unsigned char *)dst;
    const unsigned char *s = (const unsigned char *)src;
    if (d < s) {
        while (n--) *d++ = *s++;
    } else if (d > s) {
        d += n;
        s += n;
        while (n--) *--d = *--s;
    }
#endif
    return dst;
}

PALYRA__NO_BUILTIN static inline void *palyra_memset(void *dst, int value, uint32_t n) {
#if defined(__wasm_bulk_memory__)
    if (n) __builtin_memset(dst, value, n);
#else
    unsigned char *d = (unsigned char *)dst;
    while (n--) *d++ = (unsigned char)value;
#endif
    return dst;
}

PALYRA__NO_BUILTIN static inline int palyra_memcmp(const void *a, const void *b, uint32_t n) {
    const unsigned char *x = (const unsigned char *)a;
    const unsigned char *y = (const unsigned char *)b;
    for (uint32_t i = 0; i < n; i++) {
        if (x[i] != y[i]) return x[i] < y[i] ? -1 : 1;
    }
    return 0;
}

/* Length of a NUL-terminated string (NULL counts as empty). */
static inline uint32_t palyra_strlen(const char *s) {
    uint32_t n = 0;
    if (!s) return 0;
    while (s[n]) n++;
    return n;
}

/* Length of s, but at most max (never reads past s[max-1]). */
static inline uint32_t palyra_strnlen(const char *s, uint32_t max) {
    uint32_t n = 0;
    if (!s) return 0;
    while (n < max && s[n]) n++;
    return n;
}

static inline bool palyra_streq(const char *a, const char *b) {
    if (!a || !b) return a == b;
    while (*a && *a == *b) {
        a++;
        b++;
    }
    return *a == *b;
}

/* ---- allocator ------------------------------------------------------------------------------
 * A bump allocator over linear memory above the static data and the stack (__heap_base),
 * growing memory with memory.grow as needed. There is no free: a call is short and its
 * instance is thrown away afterwards. palyra_alloc_mark/palyra_alloc_release give scratch
 * space back in LIFO order. Returns NULL when the sandbox's memory limit is reached. Fresh
 * memory is zeroed; memory handed out again after a release is not. */
extern unsigned char __heap_base;
extern uint32_t palyra__heap_top; /* defined by the PALYRA_IMPLEMENTATION unit */

static inline uint32_t palyra_alloc_mark(void) {
    return palyra__heap_top ? palyra__heap_top : (uint32_t)(uintptr_t)&__heap_base;
}

static inline void palyra_alloc_release(uint32_t mark) {
    if (mark >= (uint32_t)(uintptr_t)&__heap_base && mark <= palyra_alloc_mark())
        palyra__heap_top = mark;
}

static inline void *palyra_alloc(uint32_t size) {
    uint32_t top = palyra_alloc_mark();
    if (top > UINT32_MAX - 7u) return NULL;
    top = (top + 7u) & ~7u;
    if (size > UINT32_MAX - top) return NULL;
    uint64_t end = (uint64_t)top + size;
    uint64_t have = (uint64_t)__builtin_wasm_memory_size(0) * 65536u;
    if (end > have) {
        uint64_t pages = (end - have + 65535u) / 65536u;
        if (__builtin_wasm_memory_grow(0, (size_t)pages) == (size_t)-1) return NULL;
    }
    palyra__heap_top = (uint32_t)end;
    return (void *)(uintptr_t)top;
}

/* ---- input, output, logs ----------------------------------------------------------------- */

static inline int32_t palyra_input_len(void) { return palyra_host_input_len(); }

/* Copies the whole tool input (UTF-8 JSON) into buf and NUL-terminates it. Returns its length,
 * or PALYRA_TOO_LARGE when it does not fit with the terminator (buf is then the empty string). */
static inline int32_t palyra_input(void *buf, uint32_t cap) {
    char *out = (char *)buf;
    int32_t n = palyra_host_input_len();
    if (!out || cap == 0) return PALYRA_TOO_LARGE;
    out[0] = '\0';
    if (n < 0) return n;
    if ((uint32_t)n >= cap) return PALYRA_TOO_LARGE;
    int32_t got = palyra_host_input_read(out, (uint32_t)n);
    if (got < 0) return got;
    if (got != n) return PALYRA_INVALID;
    out[n] = '\0';
    return n;
}

/* The whole input in a fresh, NUL-terminated allocation; NULL when memory runs out. */
static inline char *palyra_input_alloc(uint32_t *len) {
    int32_t n = palyra_host_input_len();
    if (n < 0 || (uint32_t)n == UINT32_MAX) return NULL;
    char *buf = (char *)palyra_alloc((uint32_t)n + 1u);
    if (!buf) return NULL;
    if (palyra_input(buf, (uint32_t)n + 1u) != n) return NULL;
    if (len) *len = (uint32_t)n;
    return buf;
}

/* Appends bytes to the tool output. Output APPENDS: build a whole document, then write it once.
 * Returns the total output length or PALYRA_TOO_LARGE (the call then fails: invalid_output). */
static inline int32_t palyra_output(const void *ptr, uint32_t len) {
    return palyra_host_output_write(ptr, len);
}

static inline int32_t palyra_output_str(const char *s) {
    return palyra_host_output_write(s, palyra_strlen(s));
}

static inline int32_t palyra_log(int32_t level, const char *message) {
    return palyra_host_log(level, message, palyra_strlen(message));
}
static inline int32_t palyra_log_debug(const char *m) { return palyra_log(PALYRA_LOG_DEBUG, m); }
static inline int32_t palyra_log_info(const char *m) { return palyra_log(PALYRA_LOG_INFO, m); }
static inline int32_t palyra_log_warn(const char *m) { return palyra_log(PALYRA_LOG_WARN, m); }
static inline int32_t palyra_log_error(const char *m) { return palyra_log(PALYRA_LOG_ERROR, m); }

/* The running tool's id (e.g. "acme.echo"), NUL-terminated; PALYRA_TOO_LARGE if cap is short. */
static inline int32_t palyra_tool_id(char *buf, uint32_t cap) {
    if (!buf || cap == 0) return PALYRA_TOO_LARGE;
    buf[0] = '\0';
    int32_t n = palyra_host_tool_id(buf, cap - 1u);
    if (n < 0) return n;
    if ((uint32_t)n >= cap) {
        buf[0] = '\0';
        return PALYRA_TOO_LARGE;
    }
    buf[n] = '\0';
    return n;
}

/* ---- the result buffer ----------------------------------------------------------------------
 * http_request, secret_get, storage_get and storage_list put their payload in the host's result
 * buffer. Read it right after the call succeeded: a failed call leaves the previous one's. */

static inline int32_t palyra_result_len(void) { return palyra_host_result_len(); }

/* Copies the whole result buffer into buf plus a NUL; PALYRA_TOO_LARGE if it does not fit. */
static inline int32_t palyra_result(void *buf, uint32_t cap) {
    char *out = (char *)buf;
    if (!out || cap == 0) return PALYRA_TOO_LARGE;
    out[0] = '\0';
    int32_t n = palyra_host_result_len();
    if (n < 0) return n;
    if ((uint32_t)n >= cap) return PALYRA_TOO_LARGE;
    int32_t got = palyra_host_result_read(out, (uint32_t)n);
    if (got < 0) return got;
    if (got != n) return PALYRA_INVALID;
    out[n] = '\0';
    return n;
}

/* Copies at most cap-1 bytes of the result buffer plus a NUL; returns the number copied (the
 * full size is palyra_result_len()). For "first N bytes of the body" use cases. */
static inline int32_t palyra_result_prefix(void *buf, uint32_t cap) {
    char *out = (char *)buf;
    if (!out || cap == 0) return PALYRA_TOO_LARGE;
    int32_t got = palyra_host_result_read(out, cap - 1u);
    if (got < 0) {
        out[0] = '\0';
        return got;
    }
    if ((uint32_t)got >= cap) got = (int32_t)(cap - 1u); /* defensive: host said it copied more */
    out[got] = '\0';
    return got;
}

/* The whole result buffer in a fresh, NUL-terminated allocation; NULL if out of memory. */
static inline char *palyra_result_alloc(uint32_t *len) {
    int32_t n = palyra_host_result_len();
    if (n < 0 || (uint32_t)n == UINT32_MAX) return NULL;
    char *buf = (char *)palyra_alloc((uint32_t)n + 1u);
    if (!buf) return NULL;
    if (palyra_result(buf, (uint32_t)n + 1u) != n) return NULL;
    if (len) *len = (uint32_t)n;
    return buf;
}

/* ---- capabilities ---------------------------------------------------------------------------
 * Thin wrappers taking C strings. Each returns what the host returns. */

/* Performs the request described by req_json (docs/abi.md, "HTTP requests"). Returns the HTTP
 * status (100-599) with the body in the result buffer, or a negative code. */
static inline int32_t palyra_http_request(const char *req_json, uint32_t len) {
    return palyra_host_http_request(req_json, len);
}

/* ref is "<scope>/<key>"; the value lands in the result buffer (length returned). Prefer
 * secret_headers in an HTTP request: then the module never sees the value at all. */
static inline int32_t palyra_secret_get(const char *ref) {
    return palyra_host_secret_get(ref, palyra_strlen(ref));
}

static inline int32_t palyra_storage_get(const char *key) {
    return palyra_host_storage_get(key, palyra_strlen(key));
}

static inline int32_t palyra_storage_put(const char *key, const void *value, uint32_t len) {
    return palyra_host_storage_put(key, palyra_strlen(key), value, len);
}

static inline int32_t palyra_storage_delete(const char *key) {
    return palyra_host_storage_delete(key, palyra_strlen(key));
}

/* JSON array of keys under prefix into the result buffer; returns the count. */
static inline int32_t palyra_storage_list(const char *prefix) {
    return palyra_host_storage_list(prefix, palyra_strlen(prefix));
}

static inline int32_t palyra_channel_send(const char *channel, const char *text) {
    return palyra_host_channel_send(channel, palyra_strlen(channel), text, palyra_strlen(text));
}

static inline int64_t palyra_now_ms(void) { return palyra_host_clock_now_ms(); }

/* Fills buf with len (<= 65536) bytes from the host's CSPRNG. */
static inline int32_t palyra_random(void *buf, uint32_t len) {
    return palyra_host_random_fill(buf, len);
}

/* ---- numbers and text -------------------------------------------------------------------- */

/* Decimal text of v into buf plus a NUL; returns the length or PALYRA_TOO_LARGE. */
static inline int32_t palyra_fmt_int(char *buf, uint32_t cap, int64_t v) {
    char tmp[24];
    uint32_t n = 0;
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    do {
        tmp[n++] = (char)('0' + (u % 10u));
        u /= 10u;
    } while (u);
    if (v < 0) tmp[n++] = '-';
    if (!buf || n >= cap) {
        if (buf && cap) buf[0] = '\0';
        return PALYRA_TOO_LARGE;
    }
    for (uint32_t i = 0; i < n; i++) buf[i] = tmp[n - 1u - i];
    buf[n] = '\0';
    return (int32_t)n;
}

/* Parses exactly `-?[0-9]+` (no spaces, no '+'). PALYRA_INVALID / PALYRA_TOO_LARGE on failure. */
static inline int32_t palyra_parse_int(const char *s, uint32_t len, int64_t *out) {
    uint32_t i = 0;
    bool negative = false;
    uint64_t limit = (uint64_t)INT64_MAX, acc = 0;
    if (!s || len == 0) return PALYRA_INVALID;
    if (s[0] == '-') {
        negative = true;
        limit += 1u;
        i = 1;
        if (len == 1) return PALYRA_INVALID;
    }
    for (; i < len; i++) {
        unsigned d = (unsigned)((unsigned char)s[i] - '0');
        if (d > 9u) return PALYRA_INVALID;
        if (acc > (limit - d) / 10u) return PALYRA_TOO_LARGE;
        acc = acc * 10u + d;
    }
    if (out) *out = negative ? (int64_t)(0u - acc) : (int64_t)acc;
    return PALYRA_OK;
}

/* Length of the longest prefix of s[0..len) that is at most max bytes and does not end inside
 * a UTF-8 sequence (for truncating text without producing broken characters). */
static inline uint32_t palyra_utf8_prefix(const char *s, uint32_t len, uint32_t max) {
    if (!s) return 0;
    if (len <= max) return len;
    uint32_t n = max;
    for (int back = 0; back < 3 && n > 0 && (((unsigned char)s[n]) & 0xC0u) == 0x80u; back++) n--;
    return n;
}

/* Length of the valid UTF-8 sequence at s[0..len), or 0 if the bytes there are not one. */
static inline uint32_t palyra__utf8_seq(const unsigned char *s, uint32_t len) {
    unsigned char c = s[0];
    if (c < 0x80u) return 1;
    uint32_t need;
    unsigned char lo = 0x80u, hi = 0xBFu;
    if (c >= 0xC2u && c <= 0xDFu) {
        need = 2;
    } else if (c >= 0xE0u && c <= 0xEFu) {
        need = 3;
        if (c == 0xE0u) lo = 0xA0u;          /* no overlongs */
        if (c == 0xEDu) hi = 0x9Fu;          /* no surrogates */
    } else if (c >= 0xF0u && c <= 0xF4u) {
        need = 4;
        if (c == 0xF0u) lo = 0x90u;          /* no overlongs */
        if (c == 0xF4u) hi = 0x8Fu;          /* nothing above U+10FFFF */
    } else {
        return 0;
    }
    if (len < need) return 0;
    if (s[1] < lo || s[1] > hi) return 0;
    for (uint32_t i = 2; i < need; i++) {
        if ((s[i] & 0xC0u) != 0x80u) return 0;
    }
    return need;
}

/* ---- string builder -------------------------------------------------------------------------
 * Appends into a fixed buffer that always stays NUL-terminated. An append that does not fit is
 * dropped whole and sets `overflow`; check palyra_str_ok() once at the end. */
typedef struct {
    char *buf;
    uint32_t cap;
    uint32_t len;
    bool overflow;
} palyra_str;

static inline void palyra_str_init(palyra_str *s, char *buf, uint32_t cap) {
    s->buf = buf;
    s->cap = buf ? cap : 0;
    s->len = 0;
    s->overflow = s->cap == 0;
    if (s->cap) buf[0] = '\0';
}

static inline bool palyra_str_ok(const palyra_str *s) { return !s->overflow; }

static inline void palyra_str_append_n(palyra_str *s, const char *p, uint32_t n) {
    if (s->overflow) return;
    if (n >= s->cap - s->len || (!p && n)) {
        s->overflow = true;
        return;
    }
    palyra_memcpy(s->buf + s->len, p, n);
    s->len += n;
    s->buf[s->len] = '\0';
}

static inline void palyra_str_append(palyra_str *s, const char *p) {
    palyra_str_append_n(s, p, palyra_strlen(p));
}

static inline void palyra_str_append_int(palyra_str *s, int64_t v) {
    char tmp[24];
    int32_t n = palyra_fmt_int(tmp, sizeof tmp, v);
    if (n < 0) {
        s->overflow = true;
        return;
    }
    palyra_str_append_n(s, tmp, (uint32_t)n);
}

/* Percent-encodes every byte except RFC 3986 unreserved characters (A-Z a-z 0-9 - . _ ~), so
 * the result is safe in a URL path segment or query value. Appends all or nothing. */
static inline void palyra_str_append_urlencoded(palyra_str *s, const char *p, uint32_t n) {
    static const char hex[] = "0123456789ABCDEF";
    uint32_t start = s->len;
    if (!p && n) s->overflow = true;
    for (uint32_t i = 0; i < n && !s->overflow; i++) {
        unsigned char c = (unsigned char)p[i];
        bool plain = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                     c == '-' || c == '.' || c == '_' || c == '~';
        if (plain) {
            palyra_str_append_n(s, (const char *)&c, 1);
        } else {
            char esc[3] = {'%', hex[c >> 4], hex[c & 15u]};
            palyra_str_append_n(s, esc, 3);
        }
    }
    if (s->overflow && s->cap) {
        s->len = start;
        s->buf[start] = '\0';
    }
}

/* ---- JSON reader ----------------------------------------------------------------------------
 * Enough JSON for tool inputs and API responses, without a DOM: look up a member of an object
 * (palyra_json_find), convert a value (string, integer, bool) and walk an array. Every lookup
 * validates the whole document it is given (strict RFC 8259 grammar, nesting up to
 * PALYRA_JSON_MAX_DEPTH, no trailing bytes) and never reads outside [json, json+len).
 * Object keys are compared after unescaping ("\u0074ext" is "text"); a key that occurs twice
 * is PALYRA_INVALID rather than "first wins" or "last wins". Numbers are validated but only
 * integers that fit int64_t can be converted. Strings are returned as raw UTF-8 bytes; a
 * string containing \u0000 cannot be read as a C string and is PALYRA_INVALID. */

typedef struct {
    const char *ptr;
    uint32_t len;
} palyra_span;

/* Scanning eight bytes at a time (plain text is the bulk of most documents, and every wasm
 * instruction costs fuel). Each test only says "one of these 8 bytes may be special"; the byte
 * loops after it decide exactly. */
#define PALYRA__ONES 0x0101010101010101ull
#define PALYRA__HIGHS 0x8080808080808080ull

static inline uint64_t palyra__load64(const char *p) {
    uint64_t v;
    __builtin_memcpy(&v, p, 8); /* a single unaligned i64.load */
    return v;
}

/* Any byte < 0x20, '"' or '\\' among the 8? (with `ascii`: or >= 0x80) */
static inline bool palyra__maybe_special8(uint64_t v, bool ascii) {
    uint64_t q = v ^ (PALYRA__ONES * (uint64_t)'"');
    uint64_t b = v ^ (PALYRA__ONES * (uint64_t)'\\');
    uint64_t t = ((q - PALYRA__ONES) & ~q) | ((b - PALYRA__ONES) & ~b) |
                 ((v - PALYRA__ONES * 0x20u) & ~v);
    if (ascii) t |= v;
    return (t & PALYRA__HIGHS) != 0;
}

/* First index >= i of a byte that is < 0x20, '"' or '\\' (or >= 0x80 with ascii), else len. */
static inline uint32_t palyra__scan_plain(const char *p, uint32_t len, uint32_t i, bool ascii) {
    while (i < len) {
        unsigned char c = (unsigned char)p[i];
        if (c < 0x20u || c == '"' || c == '\\' || (ascii && c >= 0x80u)) break;
        i++;
        while (len - i >= 8 && !palyra__maybe_special8(palyra__load64(p + i), ascii)) i += 8;
    }
    return i;
}

static inline uint32_t palyra__json_ws(const char *p, uint32_t len, uint32_t i) {
    while (i < len && (p[i] == ' ' || p[i] == '\t' || p[i] == '\n' || p[i] == '\r')) i++;
    return i;
}

static inline int palyra__hex(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static inline int32_t palyra__hex4(const char *p, uint32_t end, uint32_t i) {
    if (i > end || end - i < 4) return -1;
    int32_t v = 0;
    for (uint32_t k = 0; k < 4; k++) {
        int h = palyra__hex(p[i + k]);
        if (h < 0) return -1;
        v = v * 16 + h;
    }
    return v;
}

/* *i at the opening quote; on success *i is just past the closing quote. */
static inline int32_t palyra__json_skip_string(const char *p, uint32_t len, uint32_t *i) {
    uint32_t k = *i + 1;
    while (k < len) {
        k = palyra__scan_plain(p, len, k, false);
        if (k >= len) break;
        unsigned char c = (unsigned char)p[k];
        if (c == '"') {
            *i = k + 1;
            return PALYRA_OK;
        }
        if (c < 0x20u) return PALYRA_INVALID;
        if (c == '\\') {
            if (k + 1 >= len) return PALYRA_INVALID;
            char e = p[k + 1];
            if (e == 'u') {
                if (palyra__hex4(p, len, k + 2) < 0) return PALYRA_INVALID;
                k += 6;
            } else if (e == '"' || e == '\\' || e == '/' || e == 'b' || e == 'f' || e == 'n' ||
                       e == 'r' || e == 't') {
                k += 2;
            } else {
                return PALYRA_INVALID;
            }
        }
    }
    return PALYRA_INVALID;
}

static inline int32_t palyra__json_skip_number(const char *p, uint32_t len, uint32_t *i) {
    uint32_t k = *i;
    if (k < len && p[k] == '-') k++;
    if (k >= len) return PALYRA_INVALID;
    if (p[k] == '0') {
        k++;
    } else if (p[k] >= '1' && p[k] <= '9') {
        while (k < len && p[k] >= '0' && p[k] <= '9') k++;
    } else {
        return PALYRA_INVALID;
    }
    if (k < len && p[k] == '.') {
        k++;
        if (k >= len || p[k] < '0' || p[k] > '9') return PALYRA_INVALID;
        while (k < len && p[k] >= '0' && p[k] <= '9') k++;
    }
    if (k < len && (p[k] == 'e' || p[k] == 'E')) {
        k++;
        if (k < len && (p[k] == '+' || p[k] == '-')) k++;
        if (k >= len || p[k] < '0' || p[k] > '9') return PALYRA_INVALID;
        while (k < len && p[k] >= '0' && p[k] <= '9') k++;
    }
    *i = k;
    return PALYRA_OK;
}

static inline int32_t palyra__json_skip_literal(const char *p, uint32_t len, uint32_t *i,
                                                const char *word) {
    uint32_t n = palyra_strlen(word);
    if (*i > len || len - *i < n || palyra_memcmp(p + *i, word, n) != 0) return PALYRA_INVALID;
    *i += n;
    return PALYRA_OK;
}

/* Skips one value starting at *i (no leading whitespace); validates it on the way. */
static inline int32_t palyra__json_skip_value(const char *p, uint32_t len, uint32_t *i,
                                              uint32_t depth) {
    if (*i >= len) return PALYRA_INVALID;
    char c = p[*i];
    if (c == '"') return palyra__json_skip_string(p, len, i);
    if (c == '-' || (c >= '0' && c <= '9')) return palyra__json_skip_number(p, len, i);
    if (c == 't') return palyra__json_skip_literal(p, len, i, "true");
    if (c == 'f') return palyra__json_skip_literal(p, len, i, "false");
    if (c == 'n') return palyra__json_skip_literal(p, len, i, "null");
    if (c != '{' && c != '[') return PALYRA_INVALID;
    if (depth >= PALYRA_JSON_MAX_DEPTH) return PALYRA_TOO_LARGE;
    char close = c == '{' ? '}' : ']';
    uint32_t k = palyra__json_ws(p, len, *i + 1);
    if (k < len && p[k] == close) {
        *i = k + 1;
        return PALYRA_OK;
    }
    for (;;) {
        int32_t rc;
        if (c == '{') {
            if (k >= len || p[k] != '"') return PALYRA_INVALID;
            if ((rc = palyra__json_skip_string(p, len, &k)) != PALYRA_OK) return rc;
            k = palyra__json_ws(p, len, k);
            if (k >= len || p[k] != ':') return PALYRA_INVALID;
            k = palyra__json_ws(p, len, k + 1);
        }
        if ((rc = palyra__json_skip_value(p, len, &k, depth + 1)) != PALYRA_OK) return rc;
        k = palyra__json_ws(p, len, k);
        if (k >= len) return PALYRA_INVALID;
        if (p[k] == close) {
            *i = k + 1;
            return PALYRA_OK;
        }
        if (p[k] != ',') return PALYRA_INVALID;
        k = palyra__json_ws(p, len, k + 1);
    }
}

/* Decodes one character of a validated string body at *i (< end = index of the closing quote)
 * into out[0..4); returns the byte count, or -1 on malformed input. Lone surrogates become
 * U+FFFD, as most JSON decoders do. */
static inline int palyra__json_next_char(const char *p, uint32_t end, uint32_t *i,
                                         unsigned char out[4]) {
    uint32_t k = *i;
    if (k >= end) return -1;
    if (p[k] != '\\') {
        out[0] = (unsigned char)p[k];
        *i = k + 1;
        return 1;
    }
    if (k + 1 >= end) return -1;
    char e = p[k + 1];
    unsigned char simple = 0;
    switch (e) {
    case '"': simple = '"'; break;
    case '\\': simple = '\\'; break;
    case '/': simple = '/'; break;
    case 'b': simple = '\b'; break;
    case 'f': simple = '\f'; break;
    case 'n': simple = '\n'; break;
    case 'r': simple = '\r'; break;
    case 't': simple = '\t'; break;
    case 'u': break;
    default: return -1;
    }
    if (e != 'u') {
        out[0] = simple;
        *i = k + 2;
        return 1;
    }
    int32_t cp = palyra__hex4(p, end, k + 2);
    if (cp < 0) return -1;
    k += 6;
    if (cp >= 0xD800 && cp <= 0xDBFF) {
        int32_t lo = -1;
        if (k + 1 < end && p[k] == '\\' && p[k + 1] == 'u') lo = palyra__hex4(p, end, k + 2);
        if (lo >= 0xDC00 && lo <= 0xDFFF) {
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            k += 6;
        } else {
            cp = 0xFFFD;
        }
    } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
        cp = 0xFFFD;
    }
    *i = k;
    if (cp < 0x80) {
        out[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (unsigned char)(0xC0 | (cp >> 6));
        out[1] = (unsigned char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (unsigned char)(0xE0 | (cp >> 12));
        out[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (unsigned char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (unsigned char)(0xF0 | (cp >> 18));
    out[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (unsigned char)(0x80 | (cp & 0x3F));
    return 4;
}

/* Does the JSON string token p[start..end) (quotes included) decode to exactly `key`? */
static inline bool palyra__json_key_equals(const char *p, uint32_t start, uint32_t end,
                                           const char *key) {
    uint32_t i = start + 1, body_end = end - 1, pos = 0;
    unsigned char ch[4];
    while (i < body_end) {
        int n = palyra__json_next_char(p, body_end, &i, ch);
        if (n < 0) return false;
        for (int b = 0; b < n; b++) {
            if (ch[b] == 0 || key[pos] != (char)ch[b]) return false;
            pos++;
        }
    }
    return key[pos] == '\0';
}

/* The value of member `key` of the JSON object json[0..len) (surrounding whitespace allowed).
 * PALYRA_OK, PALYRA_NOT_FOUND, PALYRA_WRONG_TYPE (not an object) or PALYRA_INVALID. */
static inline int32_t palyra_json_find(const char *json, uint32_t len, const char *key,
                                       palyra_span *value) {
    bool found = false;
    if (!json || !key) return PALYRA_INVALID;
    uint32_t i = palyra__json_ws(json, len, 0);
    if (i >= len) return PALYRA_INVALID;
    if (json[i] != '{') {
        uint32_t k = i;
        int32_t rc = palyra__json_skip_value(json, len, &k, 0);
        return rc == PALYRA_OK ? PALYRA_WRONG_TYPE : rc;
    }
    i = palyra__json_ws(json, len, i + 1);
    if (i < len && json[i] == '}') {
        i++;
    } else {
        for (;;) {
            if (i >= len || json[i] != '"') return PALYRA_INVALID;
            uint32_t key_start = i;
            int32_t rc = palyra__json_skip_string(json, len, &i);
            if (rc != PALYRA_OK) return rc;
            bool match = palyra__json_key_equals(json, key_start, i, key);
            i = palyra__json_ws(json, len, i);
            if (i >= len || json[i] != ':') return PALYRA_INVALID;
            i = palyra__json_ws(json, len, i + 1);
            uint32_t value_start = i;
            rc = palyra__json_skip_value(json, len, &i, 1);
            if (rc != PALYRA_OK) return rc;
            if (match) {
                if (found) return PALYRA_INVALID; /* duplicate key: refuse to guess */
                found = true;
                if (value) {
                    value->ptr = json + value_start;
                    value->len = i - value_start;
                }
            }
            i = palyra__json_ws(json, len, i);
            if (i >= len) return PALYRA_INVALID;
            if (json[i] == '}') {
                i++;
                break;
            }
            if (json[i] != ',') return PALYRA_INVALID;
            i = palyra__json_ws(json, len, i + 1);
        }
    }
    if (palyra__json_ws(json, len, i) != len) return PALYRA_INVALID;
    return found ? PALYRA_OK : PALYRA_NOT_FOUND;
}

/* Internal: decode a string span; `validated` skips re-checking a span palyra_json_find
 * already validated. */
static inline int32_t palyra__json_decode(palyra_span value, char *out, uint32_t cap,
                                          bool validated) {
    if (!out || cap == 0) return PALYRA_TOO_LARGE;
    out[0] = '\0';
    if (!value.ptr || value.len < 2 || value.ptr[0] != '"' || value.ptr[value.len - 1] != '"')
        return PALYRA_WRONG_TYPE;
    uint32_t k = 0;
    if (!validated &&
        (palyra__json_skip_string(value.ptr, value.len, &k) != PALYRA_OK || k != value.len))
        return PALYRA_INVALID;
    uint32_t i = 1, end = value.len - 1, n = 0;
    unsigned char ch[4];
    while (i < end) {
        if (value.ptr[i] != '\\') { /* a run of plain bytes (validated: no NUL, no quote) */
            uint32_t run = palyra__scan_plain(value.ptr, end, i, false); /* stops at '\\' */
            if (run == i) return PALYRA_INVALID; /* cannot happen after validation */
            if (run - i >= cap - n) {
                out[0] = '\0';
                return PALYRA_TOO_LARGE;
            }
            palyra_memcpy(out + n, value.ptr + i, run - i);
            n += run - i;
            i = run;
            continue;
        }
        char e = i + 1 < end ? value.ptr[i + 1] : 0;
        if (e != 'u') { /* a two-byte escape, decoded here because they can be frequent */
            char d = e == 'n' ? '\n' : e == 't' ? '\t' : e == 'r' ? '\r' : e == 'b' ? '\b'
                   : e == 'f' ? '\f' : e;
            if (d != '"' && d != '\\' && d != '/' && d != '\n' && d != '\t' && d != '\r' &&
                d != '\b' && d != '\f')
                return PALYRA_INVALID;
            if (cap - n <= 1) {
                out[0] = '\0';
                return PALYRA_TOO_LARGE;
            }
            out[n++] = d;
            i += 2;
            continue;
        }
        int c = palyra__json_next_char(value.ptr, end, &i, ch);
        if (c < 0) return PALYRA_INVALID;
        if ((uint32_t)c >= cap - n) {
            out[0] = '\0';
            return PALYRA_TOO_LARGE;
        }
        for (int b = 0; b < c; b++) {
            if (ch[b] == 0) {
                out[0] = '\0';
                return PALYRA_INVALID;
            }
            out[n++] = (char)ch[b];
        }
    }
    out[n] = '\0';
    return (int32_t)n;
}

/* Decodes a JSON string value into out plus a NUL; returns the byte length. PALYRA_WRONG_TYPE
 * if the value is not a string, PALYRA_TOO_LARGE if out is too small, PALYRA_INVALID if it
 * contains \u0000. Invalid UTF-8 in the source is copied as is (the JSON writer repairs it). */
static inline int32_t palyra_json_string(palyra_span value, char *out, uint32_t cap) {
    return palyra__json_decode(value, out, cap, false);
}

/* An integer value (-?digits, no fraction or exponent) that fits int64_t. */
static inline int32_t palyra_json_int(palyra_span value, int64_t *out) {
    uint32_t k = 0;
    if (!value.ptr || value.len == 0) return PALYRA_WRONG_TYPE;
    char c = value.ptr[0];
    if (c != '-' && (c < '0' || c > '9')) return PALYRA_WRONG_TYPE;
    if (palyra__json_skip_number(value.ptr, value.len, &k) != PALYRA_OK || k != value.len)
        return PALYRA_INVALID;
    for (uint32_t i = 0; i < value.len; i++) {
        char d = value.ptr[i];
        if (d == '.' || d == 'e' || d == 'E') return PALYRA_WRONG_TYPE;
    }
    return palyra_parse_int(value.ptr, value.len, out);
}

static inline int32_t palyra_json_bool(palyra_span value, bool *out) {
    if (value.ptr && value.len == 4 && palyra_memcmp(value.ptr, "true", 4) == 0) {
        if (out) *out = true;
        return PALYRA_OK;
    }
    if (value.ptr && value.len == 5 && palyra_memcmp(value.ptr, "false", 5) == 0) {
        if (out) *out = false;
        return PALYRA_OK;
    }
    return PALYRA_WRONG_TYPE;
}

/* Shortcuts: look a member up and convert it in one go. */
static inline int32_t palyra_json_get_string(const char *json, uint32_t len, const char *key,
                                             char *out, uint32_t cap) {
    palyra_span v;
    if (out && cap) out[0] = '\0';
    int32_t rc = palyra_json_find(json, len, key, &v);
    return rc == PALYRA_OK ? palyra__json_decode(v, out, cap, true) : rc; /* find validated it */
}

static inline int32_t palyra_json_get_int(const char *json, uint32_t len, const char *key,
                                          int64_t *out) {
    palyra_span v;
    int32_t rc = palyra_json_find(json, len, key, &v);
    return rc == PALYRA_OK ? palyra_json_int(v, out) : rc;
}

static inline int32_t palyra_json_get_bool(const char *json, uint32_t len, const char *key,
                                           bool *out) {
    palyra_span v;
    int32_t rc = palyra_json_find(json, len, key, &v);
    return rc == PALYRA_OK ? palyra_json_bool(v, out) : rc;
}

/* Walking an array:
 *     palyra_json_iter it;
 *     palyra_span item;
 *     int32_t rc = palyra_json_array_begin(&it, array_span);   // PALYRA_WRONG_TYPE if no array
 *     if (rc != PALYRA_OK) ... error ...
 *     while ((rc = palyra_json_array_next(&it, &item)) == 1) { ... use item ... }
 *     if (rc < 0) ... error ...
 * begin() validates the whole array; next() returns 1 with an element, 0 at the end, or a
 * negative code. */
typedef struct {
    const char *p;
    uint32_t len;
    uint32_t i;
    bool done;
} palyra_json_iter;

static inline int32_t palyra_json_array_begin(palyra_json_iter *it, palyra_span array) {
    it->p = array.ptr;
    it->len = array.len;
    it->i = 0;
    it->done = true;
    if (!array.ptr || array.len == 0 || array.ptr[0] != '[') return PALYRA_WRONG_TYPE;
    uint32_t k = 0;
    int32_t rc = palyra__json_skip_value(array.ptr, array.len, &k, 0);
    if (rc != PALYRA_OK) return rc;
    if (palyra__json_ws(array.ptr, array.len, k) != array.len) return PALYRA_INVALID;
    it->i = palyra__json_ws(array.ptr, array.len, 1);
    it->done = it->i < array.len && array.ptr[it->i] == ']';
    return PALYRA_OK;
}

static inline int32_t palyra_json_array_next(palyra_json_iter *it, palyra_span *item) {
    if (it->done) return 0;
    uint32_t start = it->i;
    int32_t rc = palyra__json_skip_value(it->p, it->len, &it->i, 1);
    if (rc != PALYRA_OK) {
        it->done = true;
        return rc;
    }
    if (item) {
        item->ptr = it->p + start;
        item->len = it->i - start;
    }
    uint32_t k = palyra__json_ws(it->p, it->len, it->i);
    if (k < it->len && it->p[k] == ',') {
        it->i = palyra__json_ws(it->p, it->len, k + 1);
    } else {
        it->done = true; /* begin() validated the array, so this is the closing ']' */
    }
    return 1;
}

/* ---- JSON writer ----------------------------------------------------------------------------
 *     char buf[512];
 *     palyra_json_writer w;
 *     palyra_jw_init(&w, buf, sizeof buf);
 *     palyra_jw_begin_object(&w);
 *     palyra_jw_field_string(&w, "echo", text);
 *     palyra_jw_field_int(&w, "count", 3);
 *     palyra_jw_end_object(&w);
 *     int32_t n = palyra_jw_finish(&w);   // length, PALYRA_TOO_LARGE or PALYRA_INVALID
 *
 * Commas and colons are inserted automatically. Strings are escaped (quote, backslash and
 * control characters) and invalid UTF-8 is replaced with U+FFFD, so the result is always valid
 * JSON the host will accept. Nothing is written past cap: an overflowing write sets a flag and
 * finish() reports PALYRA_TOO_LARGE. Misuse (a value without a key inside an object, unbalanced
 * end calls, nesting deeper than PALYRA_JSON_MAX_DEPTH) makes finish() return PALYRA_INVALID. */
typedef struct {
    char *buf;
    uint32_t cap;
    uint32_t len;
    uint32_t depth;
    uint32_t first;   /* bit d: the container at depth d has no element yet */
    uint32_t objects; /* bit d: the container at depth d is an object */
    bool after_key;
    bool top_done;
    bool overflow;
    bool misuse;
} palyra_json_writer;

static inline void palyra_jw_init(palyra_json_writer *w, char *buf, uint32_t cap) {
    palyra_memset(w, 0, sizeof *w);
    w->buf = buf;
    w->cap = buf ? cap : 0;
}

static inline void palyra__jw_put(palyra_json_writer *w, const char *s, uint32_t n) {
    if (w->overflow) return;
    if (n > w->cap - w->len) {
        w->overflow = true;
        return;
    }
    palyra_memcpy(w->buf + w->len, s, n);
    w->len += n;
}

static inline void palyra__jw_before_value(palyra_json_writer *w) {
    if (w->depth == 0) {
        if (w->top_done) w->misuse = true;
        w->top_done = true;
        return;
    }
    uint32_t bit = 1u << w->depth;
    if (w->objects & bit) {
        if (!w->after_key) w->misuse = true;
        w->after_key = false;
        return;
    }
    if (!(w->first & bit)) palyra__jw_put(w, ",", 1);
    w->first &= ~bit;
}

static inline void palyra__jw_open(palyra_json_writer *w, char c, bool object) {
    palyra__jw_before_value(w);
    if (w->depth + 1 > PALYRA_JSON_MAX_DEPTH) {
        w->misuse = true;
        return;
    }
    palyra__jw_put(w, &c, 1);
    w->depth++;
    uint32_t bit = 1u << w->depth;
    w->first |= bit;
    if (object)
        w->objects |= bit;
    else
        w->objects &= ~bit;
}

static inline void palyra__jw_close(palyra_json_writer *w, char c, bool object) {
    uint32_t bit = 1u << w->depth;
    if (w->depth == 0 || w->after_key || (bool)(w->objects & bit) != object) {
        w->misuse = true;
        return;
    }
    palyra__jw_put(w, &c, 1);
    w->depth--;
}

static inline void palyra_jw_begin_object(palyra_json_writer *w) { palyra__jw_open(w, '{', true); }
static inline void palyra_jw_end_object(palyra_json_writer *w) { palyra__jw_close(w, '}', true); }
static inline void palyra_jw_begin_array(palyra_json_writer *w) { palyra__jw_open(w, '[', false); }
static inline void palyra_jw_end_array(palyra_json_writer *w) { palyra__jw_close(w, ']', false); }

static inline void palyra__jw_escaped(palyra_json_writer *w, const char *s, uint32_t n) {
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *)s;
    palyra__jw_put(w, "\"", 1);
    uint32_t i = 0;
    while (i < n && !w->overflow) {
        unsigned char c = p[i];
        if (c >= 0x20u && c < 0x80u && c != '"' && c != '\\') { /* a run of plain ASCII */
            uint32_t run = palyra__scan_plain(s, n, i + 1, true);
            palyra__jw_put(w, (const char *)p + i, run - i);
            i = run;
        } else if (c == '"' || c == '\\') {
            char esc[2] = {'\\', (char)c};
            palyra__jw_put(w, esc, 2);
            i++;
        } else if (c < 0x20u) {
            char esc[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15u]};
            if (c == '\n') palyra__jw_put(w, "\\n", 2);
            else if (c == '\r') palyra__jw_put(w, "\\r", 2);
            else if (c == '\t') palyra__jw_put(w, "\\t", 2);
            else if (c == '\b') palyra__jw_put(w, "\\b", 2);
            else if (c == '\f') palyra__jw_put(w, "\\f", 2);
            else palyra__jw_put(w, esc, 6);
            i++;
        } else {
            uint32_t seq = palyra__utf8_seq(p + i, n - i);
            if (seq == 0) {
                palyra__jw_put(w, "\\ufffd", 6);
                i++;
            } else {
                palyra__jw_put(w, (const char *)p + i, seq);
                i += seq;
            }
        }
    }
    palyra__jw_put(w, "\"", 1);
}

static inline void palyra_jw_key(palyra_json_writer *w, const char *key) {
    uint32_t bit = 1u << w->depth;
    if (w->depth == 0 || !(w->objects & bit) || w->after_key || !key) {
        w->misuse = true;
        return;
    }
    if (!(w->first & bit)) palyra__jw_put(w, ",", 1);
    w->first &= ~bit;
    palyra__jw_escaped(w, key, palyra_strlen(key));
    palyra__jw_put(w, ":", 1);
    w->after_key = true;
}

static inline void palyra_jw_string_n(palyra_json_writer *w, const char *s, uint32_t n) {
    palyra__jw_before_value(w);
    if (!s && n) {
        w->misuse = true;
        return;
    }
    palyra__jw_escaped(w, s ? s : "", n);
}

static inline void palyra_jw_string(palyra_json_writer *w, const char *s) {
    palyra_jw_string_n(w, s, palyra_strlen(s));
}

static inline void palyra_jw_int(palyra_json_writer *w, int64_t v) {
    char tmp[24];
    int32_t n = palyra_fmt_int(tmp, sizeof tmp, v);
    palyra__jw_before_value(w);
    palyra__jw_put(w, tmp, n > 0 ? (uint32_t)n : 0u);
}

static inline void palyra_jw_bool(palyra_json_writer *w, bool v) {
    palyra__jw_before_value(w);
    if (v)
        palyra__jw_put(w, "true", 4);
    else
        palyra__jw_put(w, "false", 5);
}

static inline void palyra_jw_null(palyra_json_writer *w) {
    palyra__jw_before_value(w);
    palyra__jw_put(w, "null", 4);
}

/* Inserts already-serialised JSON (e.g. a span from the reader). It is validated first; text
 * that is not exactly one JSON value marks the writer as misused instead of being copied. */
static inline void palyra_jw_raw(palyra_json_writer *w, const char *json, uint32_t n) {
    uint32_t k = 0;
    palyra__jw_before_value(w);
    if (!json || palyra__json_skip_value(json, n, &k, 0) != PALYRA_OK || k != n) {
        w->misuse = true;
        return;
    }
    palyra__jw_put(w, json, n);
}

static inline void palyra_jw_field_string(palyra_json_writer *w, const char *key, const char *v) {
    palyra_jw_key(w, key);
    palyra_jw_string(w, v);
}

static inline void palyra_jw_field_string_n(palyra_json_writer *w, const char *key, const char *v,
                                            uint32_t n) {
    palyra_jw_key(w, key);
    palyra_jw_string_n(w, v, n);
}

static inline void palyra_jw_field_int(palyra_json_writer *w, const char *key, int64_t v) {
    palyra_jw_key(w, key);
    palyra_jw_int(w, v);
}

static inline void palyra_jw_field_bool(palyra_json_writer *w, const char *key, bool v) {
    palyra_jw_key(w, key);
    palyra_jw_bool(w, v);
}

static inline void palyra_jw_field_raw(palyra_json_writer *w, const char *key, const char *json,
                                       uint32_t n) {
    palyra_jw_key(w, key);
    palyra_jw_raw(w, json, n);
}

/* Length of the finished document, PALYRA_TOO_LARGE after an overflow, PALYRA_INVALID after
 * misuse or while containers are still open. NUL-terminates the buffer when there is room. */
static inline int32_t palyra_jw_finish(palyra_json_writer *w) {
    if (w->overflow) return PALYRA_TOO_LARGE;
    if (w->misuse || w->depth != 0 || !w->top_done || w->len > (uint32_t)INT32_MAX)
        return PALYRA_INVALID;
    if (w->len < w->cap) w->buf[w->len] = '\0';
    return (int32_t)w->len;
}

/* finish() and, if that succeeded, write the document as the tool output. */
static inline int32_t palyra_jw_output(palyra_json_writer *w) {
    int32_t n = palyra_jw_finish(w);
    if (n < 0) return n;
    int32_t rc = palyra_output(w->buf, (uint32_t)n);
    return rc < 0 ? rc : n;
}

/* ---- errors -------------------------------------------------------------------------------- */

static inline const char *palyra_code_name(int32_t code) {
    switch (code) {
    case PALYRA_OK: return "OK";
    case PALYRA_DENIED: return "DENIED";
    case PALYRA_INVALID: return "INVALID";
    case PALYRA_NOT_FOUND: return "NOT_FOUND";
    case PALYRA_TOO_LARGE: return "TOO_LARGE";
    case PALYRA_UPSTREAM: return "UPSTREAM";
    case PALYRA_TIMEOUT: return "TIMEOUT";
    case PALYRA_QUOTA: return "QUOTA";
    case PALYRA_NO_MEMORY: return "NO_MEMORY";
    case PALYRA_WRONG_TYPE: return "WRONG_TYPE";
    default: return code >= 0 ? "OK" : "UNKNOWN";
    }
}

/* Ends a tool with an error: writes {"error": message, "code": code, "reason": "<NAME>"} as
 * the output and returns 1, so a tool can say `return palyra_fail("...", rc);`. The sandbox
 * reports it as tool_error with that JSON as the message. Write nothing else to the output
 * before it (output appends). Messages longer than about 900 bytes are cut. */
__attribute__((noinline, cold)) static inline int32_t palyra_fail(const char *message,
                                                                int32_t code) {
    char buf[1024];
    palyra_json_writer w;
    uint32_t n = palyra_strlen(message);
    palyra_jw_init(&w, buf, sizeof buf);
    palyra_jw_begin_object(&w);
    palyra_jw_field_string_n(&w, "error", message, palyra_utf8_prefix(message, n, 900));
    palyra_jw_field_int(&w, "code", code);
    palyra_jw_field_string(&w, "reason", palyra_code_name(code));
    palyra_jw_end_object(&w);
    if (palyra_jw_output(&w) < 0) palyra_output_str("{\"error\":\"tool failed\"}");
    return 1;
}

/* ---- implementation unit ------------------------------------------------------------------ */
#if defined(PALYRA_IMPLEMENTATION)
uint32_t palyra__heap_top = 0;

/* clang may emit calls to these for struct copies and large initialisers even in freestanding
 * mode; there is no libc to provide them. */
void *memcpy(void *dst, const void *src, size_t n);
void *memmove(void *dst, const void *src, size_t n);
void *memset(void *dst, int value, size_t n);
int memcmp(const void *a, const void *b, size_t n);
PALYRA__NO_BUILTIN void *memcpy(void *dst, const void *src, size_t n) {
    return palyra_memcpy(dst, src, (uint32_t)n);
}
PALYRA__NO_BUILTIN void *memmove(void *dst, const void *src, size_t n) {
    return palyra_memmove(dst, src, (uint32_t)n);
}
PALYRA__NO_BUILTIN void *memset(void *dst, int value, size_t n) {
    return palyra_memset(dst, value, (uint32_t)n);
}
PALYRA__NO_BUILTIN int memcmp(const void *a, const void *b, size_t n) {
    return palyra_memcmp(a, b, (uint32_t)n);
}
#endif /* PALYRA_IMPLEMENTATION */

#endif /* PALYRA_H */
