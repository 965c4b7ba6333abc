/*
 * acme.echo_http in C: two tools.
 *
 *   echo      {"text": "..."}  ->  {"echo": "..."}
 *   http_get  {"url": "https://api.example.com/..."}
 *             ->  {"status": 200, "body": "<first 16 KiB of the body>", "truncated": false}
 *
 * http_get may only reach hosts the manifest declares (api.example.com) and the operator's
 * policy grants; the host enforces that, this code just reports what the host said.
 */
#define PALYRA_IMPLEMENTATION
#include "palyra.h"

#define MAX_URL 2048
#define MAX_BODY (16 * 1024) /* bytes of the response body returned to the caller */

PALYRA_TOOL(echo) {
    uint32_t in_len = 0;
    char *input = palyra_input_alloc(&in_len);
    if (!input) return palyra_fail("cannot read the input", PALYRA_NO_MEMORY);

    /* A decoded JSON string is never longer than its encoded form. */
    char *text = (char *)palyra_alloc(in_len + 1u);
    if (!text) return palyra_fail("out of memory", PALYRA_NO_MEMORY);
    int32_t n = palyra_json_get_string(input, in_len, "text", text, in_len + 1u);
    if (n < 0) return palyra_fail("input field 'text' must be a string", n);

    /* Worst case every byte becomes a 6-byte escape, plus the braces and the key. */
    uint32_t cap = (uint32_t)n * 6u + 32u;
    char *out = (char *)palyra_alloc(cap);
    if (!out) return palyra_fail("out of memory", PALYRA_NO_MEMORY);
    palyra_json_writer w;
    palyra_jw_init(&w, out, cap);
    palyra_jw_begin_object(&w);
    palyra_jw_field_string_n(&w, "echo", text, (uint32_t)n);
    palyra_jw_end_object(&w);
    int32_t rc = palyra_jw_output(&w);
    if (rc < 0) return palyra_fail("cannot write the output", rc);
    return 0;
}

PALYRA_TOOL(http_get) {
    static char input[MAX_URL + 256];
    static char url[MAX_URL + 1];
    static char request[2 * MAX_URL + 256];
    static char body[MAX_BODY + 1];
    static char out[6 * MAX_BODY + 128];

    int32_t in_len = palyra_input(input, sizeof input);
    if (in_len < 0) return palyra_fail("input too large", in_len);
    int32_t url_len = palyra_json_get_string(input, (uint32_t)in_len, "url", url, sizeof url);
    if (url_len < 0) return palyra_fail("input field 'url' must be a string of at most 2048 bytes",
                                        url_len);

    palyra_json_writer w;
    palyra_jw_init(&w, request, sizeof request);
    palyra_jw_begin_object(&w);
    palyra_jw_field_string(&w, "method", "GET");
    palyra_jw_field_string_n(&w, "url", url, (uint32_t)url_len);
    palyra_jw_key(&w, "headers");
    palyra_jw_begin_object(&w);
    palyra_jw_field_string(&w, "Accept", "application/json, text/plain;q=0.9, */*;q=0.5");
    palyra_jw_field_string(&w, "User-Agent", "palyra-c-sdk-example/1.0");
    palyra_jw_end_object(&w);
    palyra_jw_end_object(&w);
    int32_t req_len = palyra_jw_finish(&w);
    if (req_len < 0) return palyra_fail("cannot build the request", req_len);

    int32_t status = palyra_http_request(request, (uint32_t)req_len);
    if (status < 0) return palyra_fail("http_request failed", status);

    int32_t total = palyra_result_len();
    int32_t copied = palyra_result_prefix(body, sizeof body);
    if (total < 0 || copied < 0) return palyra_fail("cannot read the response body", copied);
    uint32_t keep = palyra_utf8_prefix(body, (uint32_t)copied, MAX_BODY);

    palyra_jw_init(&w, out, sizeof out);
    palyra_jw_begin_object(&w);
    palyra_jw_field_int(&w, "status", status);
    palyra_jw_field_string_n(&w, "body", body, keep);
    palyra_jw_field_bool(&w, "truncated", keep < (uint32_t)total);
    palyra_jw_end_object(&w);
    int32_t rc = palyra_jw_output(&w);
    if (rc < 0) return palyra_fail("cannot write the output", rc);

    char line[64];
    palyra_str msg;
    palyra_str_init(&msg, line, sizeof line);
    palyra_str_append(&msg, "http_get status=");
    palyra_str_append_int(&msg, status);
    palyra_str_append(&msg, " bytes=");
    palyra_str_append_int(&msg, total);
    palyra_log_info(line);
    return 0;
}
