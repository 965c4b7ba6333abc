/*
 * Unit tests of palyra.h's pure helpers (JSON reader and writer, string builder, numbers,
 * UTF-8, allocator), run inside the real sandbox by tests/test_c_sdk.py:
 *
 *   python sdk/c/build.py sdk/c/tests/selftest.c -o selftest.wasm
 *   palyra plugin run --wasm selftest.wasm --tool selftest
 *
 * Output: {"checks": <number run>, "failures": ["<line>: <expression>", ...]}.
 */
#define PALYRA_IMPLEMENTATION
#include "palyra.h"

static char failures_buf[8192];
static palyra_json_writer failures;
static int64_t checks;

#define CHECK(expr)                                                                            \
    do {                                                                                       \
        checks++;                                                                              \
        if (!(expr)) record_failure(__LINE__, #expr);                                          \
    } while (0)

static void record_failure(int line, const char *expr) {
    char text[256];
    palyra_str s;
    palyra_str_init(&s, text, sizeof text);
    palyra_str_append_int(&s, line);
    palyra_str_append(&s, ": ");
    palyra_str_append_n(&s, expr, palyra_utf8_prefix(expr, palyra_strlen(expr), 200));
    palyra_jw_string(&failures, text);
}

#define LIT(s) (s), (uint32_t)(sizeof(s) - 1)

static bool str_is(const char *got, const char *want) { return palyra_streq(got, want); }

static void test_reader(void) {
    char out[16];
    int64_t v = 0;
    bool b = false;
    palyra_span span;

    CHECK(palyra_json_get_string(LIT("{\"a\":\"x\"}"), "a", out, sizeof out) == 1);
    CHECK(str_is(out, "x"));
    CHECK(palyra_json_get_string(LIT(" {\"a\" : \"\\u00e9\\n\"} "), "a", out, sizeof out) == 3);
    CHECK(palyra_json_get_string(LIT("{\"\\u0061\":\"esc\"}"), "a", out, sizeof out) == 3);
    CHECK(palyra_json_get_string(LIT("{\"a\":\"\\ud83c\\udf89\"}"), "a", out, sizeof out) == 4);
    CHECK(palyra_json_get_string(LIT("{\"a\":\"\\ud800x\"}"), "a", out, sizeof out) == 4);
    CHECK(palyra_json_get_string(LIT("{\"a\":\"x\\u0000\"}"), "a", out, sizeof out) ==
          PALYRA_INVALID);
    /* exactly fitting: 15 bytes + NUL fit in 16, 16 bytes do not */
    CHECK(palyra_json_get_string(LIT("{\"a\":\"123456789012345\"}"), "a", out, sizeof out) == 15);
    CHECK(palyra_json_get_string(LIT("{\"a\":\"1234567890123456\"}"), "a", out, sizeof out) ==
          PALYRA_TOO_LARGE);
    CHECK(out[0] == '\0');
    CHECK(palyra_json_get_string(LIT("{\"a\":1}"), "a", out, sizeof out) == PALYRA_WRONG_TYPE);
    CHECK(palyra_json_get_string(LIT("{\"b\":\"x\"}"), "a", out, sizeof out) == PALYRA_NOT_FOUND);
    CHECK(palyra_json_get_string(LIT("{\"a\":\"x\",\"a\":\"y\"}"), "a", out, sizeof out) ==
          PALYRA_INVALID);
    CHECK(palyra_json_get_string(LIT("{\"o\":{\"a\":\"in\"}}"), "a", out, sizeof out) ==
          PALYRA_NOT_FOUND);
    CHECK(palyra_json_get_string(LIT("[\"a\"]"), "a", out, sizeof out) == PALYRA_WRONG_TYPE);
    CHECK(palyra_json_get_string(LIT("\"a\""), "a", out, sizeof out) == PALYRA_WRONG_TYPE);

    /* malformed documents, each truncated or broken in a different place */
    static const char *const bad[] = {
        "",          "{",           "{\"a\"",       "{\"a\":",       "{\"a\":\"x",
        "{\"a\":1,}", "{\"a\":1 x}", "{\"a\":01}",   "{\"a\":1.}",    "{\"a\":-}",
        "{\"a\":1e}", "{\"a\":tru}", "{\"a\":\"\\x\"}", "{\"a\":\"\\u12\"}", "{a:1}",
        "{\"a\":1}}", "{\"a\":[1,]}", "{\"a\":[1 2]}", "{\"a\":\"\x01\"}", "{\"a\":1} 1",
        "{\"a\":{\"b\":1]}",
    };
    for (uint32_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int32_t rc = palyra_json_find(bad[i], palyra_strlen(bad[i]), "a", &span);
        CHECK(rc == PALYRA_INVALID);
        if (rc != PALYRA_INVALID) record_failure(__LINE__, bad[i]);
    }
    /* a length that cuts a valid document must never read past it */
    CHECK(palyra_json_find("{\"a\":\"xy\"}", 8, "a", &span) == PALYRA_INVALID);
    CHECK(palyra_json_find(NULL, 0, "a", &span) == PALYRA_INVALID);

    /* nesting limit */
    char deep[200];
    palyra_str d;
    palyra_str_init(&d, deep, sizeof deep);
    palyra_str_append(&d, "{\"a\":1,\"n\":");
    for (int i = 0; i < PALYRA_JSON_MAX_DEPTH + 2; i++) palyra_str_append(&d, "[");
    for (int i = 0; i < PALYRA_JSON_MAX_DEPTH + 2; i++) palyra_str_append(&d, "]");
    palyra_str_append(&d, "}");
    CHECK(palyra_str_ok(&d));
    CHECK(palyra_json_find(deep, d.len, "a", &span) == PALYRA_TOO_LARGE);

    CHECK(palyra_json_get_int(LIT("{\"n\":-42}"), "n", &v) == PALYRA_OK && v == -42);
    CHECK(palyra_json_get_int(LIT("{\"n\":9223372036854775807}"), "n", &v) == PALYRA_OK &&
          v == INT64_MAX);
    CHECK(palyra_json_get_int(LIT("{\"n\":-9223372036854775808}"), "n", &v) == PALYRA_OK &&
          v == INT64_MIN);
    CHECK(palyra_json_get_int(LIT("{\"n\":9223372036854775808}"), "n", &v) == PALYRA_TOO_LARGE);
    CHECK(palyra_json_get_int(LIT("{\"n\":1.5}"), "n", &v) == PALYRA_WRONG_TYPE);
    CHECK(palyra_json_get_int(LIT("{\"n\":1e3}"), "n", &v) == PALYRA_WRONG_TYPE);
    CHECK(palyra_json_get_int(LIT("{\"n\":\"1\"}"), "n", &v) == PALYRA_WRONG_TYPE);
    CHECK(palyra_json_get_bool(LIT("{\"t\":true}"), "t", &b) == PALYRA_OK && b);
    CHECK(palyra_json_get_bool(LIT("{\"t\":null}"), "t", &b) == PALYRA_WRONG_TYPE);

    /* arrays */
    palyra_json_iter it;
    palyra_span item;
    int64_t sum = 0;
    int32_t rc, n = 0;
    CHECK(palyra_json_find(LIT("{\"xs\":[1, 2 ,{\"k\":[3]}, 4]}"), "xs", &span) == PALYRA_OK);
    CHECK(palyra_json_array_begin(&it, span) == PALYRA_OK);
    while ((rc = palyra_json_array_next(&it, &item)) == 1) {
        n++;
        if (palyra_json_int(item, &v) == PALYRA_OK) sum += v;
    }
    CHECK(rc == 0 && n == 4 && sum == 7);
    CHECK(palyra_json_find(LIT("{\"xs\":[]}"), "xs", &span) == PALYRA_OK);
    CHECK(palyra_json_array_begin(&it, span) == PALYRA_OK);
    CHECK(palyra_json_array_next(&it, &item) == 0);
    CHECK(palyra_json_find(LIT("{\"xs\":{}}"), "xs", &span) == PALYRA_OK);
    CHECK(palyra_json_array_begin(&it, span) == PALYRA_WRONG_TYPE);
    CHECK(palyra_json_array_next(&it, &item) == 0);
}

/* The reader and writer scan 8 bytes at a time: put a special byte at every offset. */
static void test_block_boundaries(void) {
    for (uint32_t pos = 0; pos < 20; pos++) {
        char doc[64], out[32], expect[32];
        palyra_str d;
        palyra_json_writer w;

        palyra_str_init(&d, doc, sizeof doc);
        palyra_str_append(&d, "{\"a\":\"");
        for (uint32_t i = 0; i < 20; i++) palyra_str_append(&d, i == pos ? "\\\"" : "x");
        palyra_str_append(&d, "\"}");
        int32_t n = palyra_json_get_string(doc, d.len, "a", out, sizeof out);
        CHECK(n == 20 && out[pos] == '"' && out[20] == '\0');

        doc[6 + pos] = '\x01'; /* a raw control character is not allowed in a string */
        CHECK(palyra_json_get_string(doc, d.len, "a", out, sizeof out) == PALYRA_INVALID);
        doc[6 + pos] = '"'; /* the string now ends early: trailing garbage */
        CHECK(palyra_json_get_string(doc, d.len, "a", out, sizeof out) == PALYRA_INVALID);

        char text[21];
        for (uint32_t i = 0; i < 20; i++) text[i] = 'x';
        text[pos] = '\n';
        text[20] = '\0';
        palyra_str e;
        palyra_str_init(&e, expect, sizeof expect);
        palyra_str_append(&e, "\"");
        for (uint32_t i = 0; i < 20; i++) palyra_str_append(&e, i == pos ? "\\n" : "x");
        palyra_str_append(&e, "\"");
        palyra_jw_init(&w, out, sizeof out);
        palyra_jw_string(&w, text);
        CHECK(palyra_jw_finish(&w) == 23 && str_is(out, expect));

        text[pos] = (char)0xff; /* invalid UTF-8 at every offset */
        palyra_jw_init(&w, out, sizeof out);
        palyra_jw_string(&w, text);
        CHECK(palyra_jw_finish(&w) == 27 && out[pos + 1] == '\\' && out[pos + 3] == 'f');
    }
}

static void test_writer(void) {
    char buf[128];
    palyra_json_writer w;

    palyra_jw_init(&w, buf, sizeof buf);
    palyra_jw_begin_object(&w);
    palyra_jw_field_string(&w, "s", "q\"b\\c\n\x01");
    palyra_jw_field_int(&w, "i", INT64_MIN);
    palyra_jw_key(&w, "a");
    palyra_jw_begin_array(&w);
    palyra_jw_bool(&w, true);
    palyra_jw_null(&w);
    palyra_jw_raw(&w, LIT("{\"x\":[1]}"));
    palyra_jw_end_array(&w);
    palyra_jw_end_object(&w);
    CHECK(palyra_jw_finish(&w) > 0);
    CHECK(str_is(buf, "{\"s\":\"q\\\"b\\\\c\\n\\u0001\",\"i\":-9223372036854775808,"
                      "\"a\":[true,null,{\"x\":[1]}]}"));

    /* invalid UTF-8 is repaired, valid multi-byte text is kept */
    palyra_jw_init(&w, buf, sizeof buf);
    palyra_jw_string(&w, "\xc3\xa9\xff\xed\xa0\x80\xf0\x9f\x8e\x89\xe2\x82");
    CHECK(palyra_jw_finish(&w) > 0);
    CHECK(str_is(buf, "\"\xc3\xa9\\ufffd\\ufffd\\ufffd\\ufffd\xf0\x9f\x8e\x89\\ufffd\\ufffd\""));

    /* overflow: nothing past cap, finish reports TOO_LARGE */
    char small[8];
    small[7] = 'Z';
    palyra_jw_init(&w, small, 7);
    palyra_jw_string(&w, "0123456789");
    CHECK(palyra_jw_finish(&w) == PALYRA_TOO_LARGE);
    CHECK(small[7] == 'Z' && w.len <= 7);

    /* misuse */
    palyra_jw_init(&w, buf, sizeof buf);
    palyra_jw_begin_object(&w);
    palyra_jw_string(&w, "value without key");
    palyra_jw_end_object(&w);
    CHECK(palyra_jw_finish(&w) == PALYRA_INVALID);
    palyra_jw_init(&w, buf, sizeof buf);
    palyra_jw_begin_array(&w);
    CHECK(palyra_jw_finish(&w) == PALYRA_INVALID); /* still open */
    palyra_jw_end_object(&w);
    CHECK(palyra_jw_finish(&w) == PALYRA_INVALID); /* wrong closer */
    palyra_jw_init(&w, buf, sizeof buf);
    palyra_jw_int(&w, 1);
    palyra_jw_int(&w, 2);
    CHECK(palyra_jw_finish(&w) == PALYRA_INVALID); /* two top-level values */
    palyra_jw_init(&w, buf, sizeof buf);
    palyra_jw_raw(&w, LIT("{\"x\":"));
    CHECK(palyra_jw_finish(&w) == PALYRA_INVALID); /* raw text must be one JSON value */
    palyra_jw_init(&w, buf, sizeof buf);
    for (int i = 0; i < PALYRA_JSON_MAX_DEPTH + 1; i++) palyra_jw_begin_array(&w);
    CHECK(palyra_jw_finish(&w) == PALYRA_INVALID);
    palyra_jw_init(&w, NULL, 100);
    palyra_jw_int(&w, 1);
    CHECK(palyra_jw_finish(&w) == PALYRA_TOO_LARGE);
}

static void test_text(void) {
    char buf[8];
    int64_t v = 0;
    CHECK(palyra_fmt_int(buf, sizeof buf, -123456) == 7 && str_is(buf, "-123456"));
    CHECK(palyra_fmt_int(buf, sizeof buf, -1234567) == PALYRA_TOO_LARGE);
    CHECK(palyra_fmt_int(buf, sizeof buf, 1234567) == 7 && str_is(buf, "1234567"));
    CHECK(palyra_fmt_int(buf, sizeof buf, 12345678) == PALYRA_TOO_LARGE && buf[0] == '\0');
    CHECK(palyra_fmt_int(buf, sizeof buf, 0) == 1 && str_is(buf, "0"));
    CHECK(palyra_parse_int(LIT("-0"), &v) == PALYRA_OK && v == 0);
    CHECK(palyra_parse_int(LIT("+1"), &v) == PALYRA_INVALID);
    CHECK(palyra_parse_int(LIT("-"), &v) == PALYRA_INVALID);
    CHECK(palyra_parse_int(LIT("99999999999999999999"), &v) == PALYRA_TOO_LARGE);

    palyra_str s;
    palyra_str_init(&s, buf, sizeof buf);
    palyra_str_append(&s, "abc");
    palyra_str_append(&s, "defgh"); /* 3 + 5 = 8 bytes + NUL does not fit: dropped */
    CHECK(!palyra_str_ok(&s) && str_is(buf, "abc"));

    char url[32];
    palyra_str_init(&s, url, sizeof url);
    palyra_str_append_urlencoded(&s, LIT("S\xc3\xa3o Paulo&x=/"));
    CHECK(palyra_str_ok(&s) && str_is(url, "S%C3%A3o%20Paulo%26x%3D%2F"));
    palyra_str_init(&s, url, 8);
    palyra_str_append(&s, "ab");
    palyra_str_append_urlencoded(&s, LIT("  "));
    CHECK(!palyra_str_ok(&s) && str_is(url, "ab")); /* all or nothing */

    CHECK(palyra_utf8_prefix(LIT("a\xf0\x9f\x8e\x89"), 3) == 1);
    CHECK(palyra_utf8_prefix(LIT("a\xf0\x9f\x8e\x89"), 5) == 5);
    CHECK(palyra_utf8_prefix(LIT("abc"), 2) == 2);
    CHECK(palyra_strnlen("abcdef", 4) == 4);
    CHECK(palyra_streq("a", "a") && !palyra_streq("a", "ab") && !palyra_streq("a", NULL));
    CHECK(str_is(palyra_code_name(PALYRA_QUOTA), "QUOTA"));
}

static void test_alloc(void) {
    uint32_t mark = palyra_alloc_mark();
    unsigned char *a = (unsigned char *)palyra_alloc(100000); /* grows memory */
    CHECK(a != NULL && ((uintptr_t)a & 7u) == 0);
    if (a) {
        a[99999] = 1;
        CHECK(a[0] == 0);
    }
    CHECK(palyra_alloc(0xFFFFFFF0u) == NULL);  /* address space overflow */
    CHECK(palyra_alloc(0x7FFFFFFFu) == NULL);  /* beyond the sandbox's memory limit */
    palyra_alloc_release(mark);
    CHECK(palyra_alloc_mark() == mark);
    palyra_alloc_release(0); /* below the heap: ignored */
    CHECK(palyra_alloc_mark() == mark);
}

PALYRA_TOOL(selftest) {
    palyra_jw_init(&failures, failures_buf, sizeof failures_buf);
    palyra_jw_begin_array(&failures);
    test_reader();
    test_block_boundaries();
    test_writer();
    test_text();
    test_alloc();
    palyra_jw_end_array(&failures);
    int32_t n = palyra_jw_finish(&failures);
    if (n < 0) return palyra_fail("too many failures to report", n);

    static char out[sizeof failures_buf + 64];
    palyra_json_writer w;
    palyra_jw_init(&w, out, sizeof out);
    palyra_jw_begin_object(&w);
    palyra_jw_field_int(&w, "checks", checks);
    palyra_jw_field_raw(&w, "failures", failures_buf, (uint32_t)n);
    palyra_jw_end_object(&w);
    return palyra_jw_output(&w) < 0 ? 1 : 0;
}
