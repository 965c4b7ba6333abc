/*
 * acme.weather_report in C: HTTP + a secret the module never sees -> an A2UI document.
 *
 *   report  {"city": "Paris"}  ->  {"v": 1, "surface": "weather-report", "components": [
 *               text summary, table (Day / High / Low), chart (daily highs)]}
 *
 * It calls  GET https://api.weather.example/v1/forecast?city=<percent-encoded city>
 * with "Authorization: Bearer <secret skill:acme.weather_report/api_key>" added INSIDE the
 * host through "secret_headers": the key never enters this module's memory, so it cannot leak
 * through the output, logs or a bug here. The API answers (all fields required, temperatures
 * are integers in degrees Celsius, extra fields ignored):
 *
 *   {"city": "Paris", "days": [{"day": "Mon", "high": 21, "low": 12}, ...]}
 *
 * Optional input "port" (1-65535) targets the same host on another port, e.g. a local mock
 * API during development and tests. The host still applies the operator's port policy, which
 * normally allows only 443; the host name cannot be changed from the input.
 */
#define PALYRA_IMPLEMENTATION
#include "palyra.h"

#define API_HOST "api.weather.example"
#define SECRET_REF "skill:acme.weather_report/api_key"
#define MAX_CITY 80             /* bytes of UTF-8 */
#define MAX_RESPONSE (64 * 1024) /* larger answers are refused, not truncated */
#define MAX_DAYS 14             /* further days are ignored */
#define MAX_DAY_LABEL 32
#define MAX_ABS_TEMP 200

typedef struct {
    char label[MAX_DAY_LABEL + 1];
    int64_t high;
    int64_t low;
} day_forecast;

static day_forecast days[MAX_DAYS];
static char output[32 * 1024];

/* Control characters make no sense in a city name; anything else is percent-encoded. */
static bool valid_city(const char *city, int32_t len) {
    if (len < 1 || len > MAX_CITY) return false;
    for (int32_t i = 0; i < len; i++) {
        if ((unsigned char)city[i] < 0x20u || city[i] == 0x7f) return false;
    }
    return true;
}

static int32_t fail_status(int32_t status) {
    char text[64];
    palyra_str msg;
    palyra_str_init(&msg, text, sizeof text);
    palyra_str_append(&msg, "weather API answered HTTP ");
    palyra_str_append_int(&msg, status);
    return palyra_fail(text, PALYRA_UPSTREAM);
}

/* Fills days[] from the API's JSON; returns the number of days or a negative code. */
static int32_t parse_forecast(const char *json, uint32_t len) {
    palyra_span list, item;
    palyra_json_iter it;
    int32_t count = 0;
    int32_t rc = palyra_json_find(json, len, "days", &list);
    if (rc != PALYRA_OK) return rc;
    if ((rc = palyra_json_array_begin(&it, list)) != PALYRA_OK) return rc;
    while ((rc = palyra_json_array_next(&it, &item)) == 1) {
        if (count == MAX_DAYS) continue; /* ignore further days (begin() validated them) */
        day_forecast *d = &days[count];
        int32_t n = palyra_json_get_string(item.ptr, item.len, "day", d->label, sizeof d->label);
        if (n < 0) return n;
        if ((rc = palyra_json_get_int(item.ptr, item.len, "high", &d->high)) != PALYRA_OK)
            return rc;
        if ((rc = palyra_json_get_int(item.ptr, item.len, "low", &d->low)) != PALYRA_OK) return rc;
        if (d->high > MAX_ABS_TEMP || d->high < -MAX_ABS_TEMP || d->low > MAX_ABS_TEMP ||
            d->low < -MAX_ABS_TEMP)
            return PALYRA_INVALID;
        count++;
    }
    return rc < 0 ? rc : count;
}

static int32_t write_document(const char *city, uint32_t city_len, int32_t count) {
    char summary[160], cell[24];
    palyra_str s;
    palyra_str_init(&s, summary, sizeof summary);
    palyra_str_append(&s, "Forecast for ");
    palyra_str_append_n(&s, city, palyra_utf8_prefix(city, city_len, MAX_CITY));
    palyra_str_append(&s, ": ");
    palyra_str_append_int(&s, count);
    palyra_str_append(&s, count == 1 ? " day" : " days");

    palyra_json_writer w;
    palyra_jw_init(&w, output, sizeof output);
    palyra_jw_begin_object(&w);
    palyra_jw_field_int(&w, "v", 1);
    palyra_jw_field_string(&w, "surface", "weather-report");
    palyra_jw_key(&w, "components");
    palyra_jw_begin_array(&w);

    palyra_jw_begin_object(&w); /* a text line */
    palyra_jw_field_string(&w, "id", "summary");
    palyra_jw_field_string(&w, "type", "text");
    palyra_jw_key(&w, "props");
    palyra_jw_begin_object(&w);
    palyra_jw_field_string(&w, "value", summary);
    palyra_jw_field_string(&w, "tone", count ? "normal" : "muted");
    palyra_jw_end_object(&w);
    palyra_jw_end_object(&w);

    palyra_jw_begin_object(&w); /* the table: cells are strings */
    palyra_jw_field_string(&w, "id", "forecast-table");
    palyra_jw_field_string(&w, "type", "table");
    palyra_jw_key(&w, "props");
    palyra_jw_begin_object(&w);
    palyra_jw_key(&w, "columns");
    palyra_jw_begin_array(&w);
    palyra_jw_string(&w, "Day");
    palyra_jw_string(&w, "High (\xc2\xb0" "C)");
    palyra_jw_string(&w, "Low (\xc2\xb0" "C)");
    palyra_jw_end_array(&w);
    palyra_jw_key(&w, "rows");
    palyra_jw_begin_array(&w);
    for (int32_t i = 0; i < count; i++) {
        palyra_jw_begin_array(&w);
        palyra_jw_string(&w, days[i].label);
        palyra_fmt_int(cell, sizeof cell, days[i].high);
        palyra_jw_string(&w, cell);
        palyra_fmt_int(cell, sizeof cell, days[i].low);
        palyra_jw_string(&w, cell);
        palyra_jw_end_array(&w);
    }
    palyra_jw_end_array(&w);
    palyra_jw_end_object(&w);
    palyra_jw_end_object(&w);

    palyra_jw_begin_object(&w); /* the chart: one bar per day */
    palyra_jw_field_string(&w, "id", "highs-chart");
    palyra_jw_field_string(&w, "type", "chart");
    palyra_jw_key(&w, "props");
    palyra_jw_begin_object(&w);
    palyra_jw_field_string(&w, "title", "Daily highs (\xc2\xb0" "C)");
    palyra_jw_key(&w, "series");
    palyra_jw_begin_array(&w);
    for (int32_t i = 0; i < count; i++) {
        palyra_jw_begin_object(&w);
        palyra_jw_field_string(&w, "label", days[i].label);
        palyra_jw_field_int(&w, "value", days[i].high);
        palyra_jw_end_object(&w);
    }
    palyra_jw_end_array(&w);
    palyra_jw_end_object(&w);
    palyra_jw_end_object(&w);

    palyra_jw_end_array(&w);
    palyra_jw_end_object(&w);
    return palyra_jw_output(&w);
}

PALYRA_TOOL(report) {
    char input[1024], city[MAX_CITY + 1], url_buf[512], request[1024];
    int64_t port = 443;

    int32_t n = palyra_input(input, sizeof input);
    if (n < 0) return palyra_fail("input too large", n);
    int32_t city_len = palyra_json_get_string(input, (uint32_t)n, "city", city, sizeof city);
    if (city_len == PALYRA_TOO_LARGE || (city_len >= 0 && !valid_city(city, city_len)))
        return palyra_fail("city must be 1-80 bytes without control characters", PALYRA_INVALID);
    if (city_len < 0) return palyra_fail("input field 'city' must be a string", city_len);
    int32_t rc = palyra_json_get_int(input, (uint32_t)n, "port", &port);
    if (rc != PALYRA_OK && rc != PALYRA_NOT_FOUND)
        return palyra_fail("input field 'port' must be an integer", rc);
    if (port < 1 || port > 65535) return palyra_fail("port must be 1-65535", PALYRA_INVALID);

    palyra_str url;
    palyra_str_init(&url, url_buf, sizeof url_buf);
    palyra_str_append(&url, "https://" API_HOST);
    if (port != 443) {
        palyra_str_append(&url, ":");
        palyra_str_append_int(&url, port);
    }
    palyra_str_append(&url, "/v1/forecast?city=");
    palyra_str_append_urlencoded(&url, city, (uint32_t)city_len);
    if (!palyra_str_ok(&url)) return palyra_fail("URL too long", PALYRA_TOO_LARGE);

    /* {"method":"GET","url":...,"headers":{...},
     *  "secret_headers":{"Authorization":{"secret":"<scope>/<key>","prefix":"Bearer "}}} */
    palyra_json_writer w;
    palyra_jw_init(&w, request, sizeof request);
    palyra_jw_begin_object(&w);
    palyra_jw_field_string(&w, "method", "GET");
    palyra_jw_field_string(&w, "url", url_buf);
    palyra_jw_key(&w, "headers");
    palyra_jw_begin_object(&w);
    palyra_jw_field_string(&w, "Accept", "application/json");
    palyra_jw_end_object(&w);
    palyra_jw_key(&w, "secret_headers");
    palyra_jw_begin_object(&w);
    palyra_jw_key(&w, "Authorization");
    palyra_jw_begin_object(&w);
    palyra_jw_field_string(&w, "secret", SECRET_REF);
    palyra_jw_field_string(&w, "prefix", "Bearer ");
    palyra_jw_end_object(&w);
    palyra_jw_end_object(&w);
    palyra_jw_end_object(&w);
    int32_t req_len = palyra_jw_finish(&w);
    if (req_len < 0) return palyra_fail("cannot build the request", req_len);

    int32_t status = palyra_http_request(request, (uint32_t)req_len);
    if (status < 0) return palyra_fail("weather API request failed", status);
    if (status != 200) return fail_status(status);

    int32_t size = palyra_result_len();
    if (size < 0 || size > MAX_RESPONSE)
        return palyra_fail("weather API response is too large", PALYRA_TOO_LARGE);
    uint32_t body_len = 0;
    char *body = palyra_result_alloc(&body_len);
    if (!body) return palyra_fail("out of memory", PALYRA_NO_MEMORY);

    int32_t count = parse_forecast(body, body_len);
    if (count < 0) return palyra_fail("weather API response is malformed", count);

    rc = write_document(city, (uint32_t)city_len, count);
    if (rc < 0) return palyra_fail("cannot write the output", rc);

    char line[48];
    palyra_str msg;
    palyra_str_init(&msg, line, sizeof line);
    palyra_str_append(&msg, "forecast days=");
    palyra_str_append_int(&msg, count);
    palyra_log_info(line);
    return 0;
}
