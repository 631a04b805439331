/* certsync: the status page for a person (see cs_status_html.h). */
#include "cs_status_html.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cs_status.h"
#include "cs_time.h"

#define SERVER CS_STATUS_SERVER_KEY

static const char page_head[] =
    "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
    "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
    "<title>certsync: certificates of this %s</title>\n<style>\n"
    "body{font-family:system-ui,sans-serif;margin:0;padding:1.5em 2em;background:#eef0f3;"
    "color:#222}\n"
    "h1{font-size:1.4em;margin:0 0 .2em}.sub{color:#666;margin:0 0 1.2em;font-size:.9em}\n"
    ".cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(26em,1fr));gap:1em}\n"
    ".card{background:#fff;border-radius:8px;padding:1em 1.3em;box-shadow:0 1px 3px #0003;"
    "border-top:5px solid #2a8}\n"
    ".card.warn{border-top-color:#d90}.card.bad{border-top-color:#c33}\n"
    ".card h2{font-size:1.2em;margin:0;display:flex;justify-content:space-between;"
    "align-items:center;word-break:break-all}\n"
    ".badge{font-size:.7em;padding:.2em .7em;border-radius:1em;color:#fff;background:#2a8;"
    "white-space:nowrap;margin-left:.5em}\n"
    ".badge.warn{background:#d90}.badge.bad{background:#c33}\n"
    ".names{color:#555;font-size:.9em;margin:.3em 0 .8em;word-break:break-all}\n"
    ".days{font-size:1.6em;font-weight:600}.days small{font-size:.55em;font-weight:normal;"
    "color:#666}\n"
    ".bar{height:.8em;background:#e3e5e8;border-radius:.4em;overflow:hidden;margin:.3em 0 "
    "1em}\n"
    ".fill{height:100%%;background:#2a8}.fill.warn{background:#d90}.fill.bad{background:#c33}\n"
    "table{border-collapse:collapse;width:100%%;font-size:.9em}\n"
    "th{text-align:left;color:#666;font-weight:normal;padding:.2em 1em .2em 0;"
    "vertical-align:top;white-space:nowrap;width:1%%}\n"
    "td{padding:.2em 0;word-break:break-word}code{font-size:.85em}\n"
    ".err{color:#b22}.hook{background:#fff1f0;border:1px solid #f3c2bd;border-radius:6px;"
    "padding:.5em .8em;margin-top:.8em}\n"
    ".hook h3{font-size:1em;margin:0 0 .3em;color:#b22}\n"
    ".proc{margin:0 0 .15em}.since{color:#666;font-size:.9em}\n"
    "</style></head><body>\n";

/* Text of the document as HTML: markup characters as entities, control characters visible. */
static void esc(FILE *f, const char *s)
{
    for (; s && *s; s++) {
        unsigned char ch = (unsigned char)*s;

        if (ch == '<')
            fputs("&lt;", f);
        else if (ch == '>')
            fputs("&gt;", f);
        else if (ch == '&')
            fputs("&amp;", f);
        else if (ch == '"')
            fputs("&quot;", f);
        else if (ch == '\'')
            fputs("&#39;", f);
        else if (ch < 0x20 || ch == 0x7f)
            fprintf(f, "\\x%02x", ch);
        else
            fputc(ch, f);
    }
}

static const char *str(const json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

static long long num(const json_t *o, const char *key)
{
    return (long long)json_integer_value(json_object_get(o, key));
}

/* Any value of the document, escaped; "—" for null or absent. */
static void value(FILE *f, const json_t *v)
{
    if (json_is_string(v))
        esc(f, json_string_value(v));
    else if (json_is_integer(v))
        fprintf(f, "%lld", (long long)json_integer_value(v));
    else if (json_is_boolean(v))
        fputs(json_is_true(v) ? "yes" : "no", f);
    else
        fputs("&mdash;", f);
}

/* "2026-01-02 03:04:05 UTC (3 h ago)": an ISO time of the document, and how far from now. */
static void when(FILE *f, const json_t *v, time_t now)
{
    time_t t;
    long long d;
    const char *s = json_string_value(v);

    if (s == NULL || cs_time_parse_iso(s, &t) != CS_OK) {
        cs_error_clear();
        value(f, v);
        return;
    }
    fprintf(f, "%.10s %.8s UTC", s, s + 11);
    d = (long long)(now - t);
    if (d < 0)
        d = -d;
    fputs(" (", f);
    if (d < 120)
        fprintf(f, "%lld s", d);
    else if (d < 7200)
        fprintf(f, "%lld min", d / 60);
    else if (d < 172800)
        fprintf(f, "%lld h", d / 3600);
    else
        fprintf(f, "%lld days", d / 86400);
    fputs(t <= now ? " ago)" : " from now)", f);
}

static void row(FILE *f, const char *label, const json_t *v)
{
    fprintf(f, "<tr><th>%s</th><td>", label);
    value(f, v);
    fputs("</td></tr>\n", f);
}

static void time_row(FILE *f, const char *label, const json_t *v, time_t now)
{
    fprintf(f, "<tr><th>%s</th><td>", label);
    when(f, v, now);
    fputs("</td></tr>\n", f);
}

static int hook_pending(const json_t *c)
{
    return json_is_object(json_object_get(c, "hook_pending"));
}

/* The badge: the worst thing about the certificate, as `certsync status --check` judges. */
static const char *judge(const json_t *c, char *label, size_t size)
{
    const json_t *srv = json_object_get(c, SERVER), *days = json_object_get(c, "days_left");
    const char *last = str(c, "last_sync");

    if (json_is_true(json_object_get(c, "fallback")))
        return snprintf(label, size, "no version yet"), "bad";
    if (json_is_integer(days) && json_integer_value(days) < 0)
        return snprintf(label, size, "expired"), "bad";
    if (hook_pending(c))
        return snprintf(label, size, "on-change pending"), "bad";
    if (json_is_object(json_object_get(c, "deploy_pending")))
        return snprintf(label, size, "deployment pending"), "bad";
    if (json_is_object(json_object_get(srv, "refused")))
        return snprintf(label, size, "new version refused"), "bad";
    if (json_is_integer(days) && json_integer_value(days) <= CS_CHECK_CRITICAL_DAYS)
        return snprintf(label, size, "expires in %lld days", json_integer_value(days)), "bad";
    if (last && (strcmp(last, "failed") == 0 || strcmp(last, "unreadable") == 0))
        return snprintf(label, size, "last sync %s", last), "warn";
    if (json_is_object(json_object_get(c, "held")))
        return snprintf(label, size, "held at v%lld", num(json_object_get(c, "held"), "version")),
               "warn";
    return snprintf(label, size, "ok"), "ok";
}

/* Days left, and a bar of the part of its lifetime (not_before..not_after) that is left. */
static void lifetime(FILE *f, const json_t *c, time_t now)
{
    time_t nb, na;
    double part = 0;
    long long life;
    const char *cls;

    if (cs_time_parse_iso(str(c, "not_before"), &nb) != CS_OK ||
        cs_time_parse_iso(str(c, "not_after"), &na) != CS_OK || na <= nb) {
        cs_error_clear();
        fputs("<p class=\"days\">no certificate <small>", f);
        esc(f, str(c, "error_current") ? str(c, "error_current") : "no current version");
        fputs("</small></p>\n<div class=\"bar\"><div class=\"fill bad\" style=\"width:0\">"
              "</div></div>\n",
              f);
        return;
    }
    life = (long long)(na - nb) / 86400;
    if (now < na)
        part = now <= nb ? 1.0 : (double)(na - now) / (double)(na - nb);
    cls = num(c, "days_left") <= CS_CHECK_CRITICAL_DAYS ? "bad" : part < 1.0 / 3 ? "warn" : "ok";
    fprintf(f,
            "<p class=\"days\">%lld days left <small>of %lld (until %.10s)</small></p>\n"
            "<div class=\"bar\" title=\"%.0f%% of its lifetime left\"><div class=\"fill %s\" "
            "style=\"width:%.1f%%\"></div></div>\n",
            num(c, "days_left"), life, str(c, "not_after"), part * 100, cls, part * 100);
}

/* One row per process: a worker's version (nginx), or the answering process's (Apache). */
static void served(FILE *f, const json_t *srv, time_t now)
{
    const json_t *workers = json_object_get(srv, "workers"), *w;
    size_t i;

    if (!json_is_array(workers) || json_array_size(workers) == 0) {
        w = json_object_get(srv, "served");
        if (!json_is_object(w))
            return;
        workers = NULL;
    }
    fputs("<tr><th>served</th><td>\n", f);
    for (i = 0; workers ? i < json_array_size(workers) : i == 0; i++) {
        if (workers)
            w = json_array_get(workers, i);
        if (json_is_integer(json_object_get(w, "worker")))
            fprintf(f, "<div class=\"proc\">worker %lld", num(w, "worker"));
        else
            fputs("<div class=\"proc\">this process", f);
        fprintf(f, " (pid %lld): ", num(w, "pid"));
        if (json_is_integer(json_object_get(w, "version")))
            fprintf(f, "<b>v%lld</b>", num(w, "version"));
        else
            fputs("<b class=\"err\">fallback</b>", f);
        if (json_is_string(json_object_get(w, "since"))) {
            fputs(" <span class=\"since\">since ", f);
            when(f, json_object_get(w, "since"), now);
            fputs("</span>", f);
        }
        fputs("</div>\n", f);
    }
    fputs("</td></tr>\n", f);
}

/* What only the server knows: its processes, a version it refused, why it serves the fallback. */
static void server_rows(FILE *f, const json_t *srv, time_t now)
{
    const json_t *refused = json_object_get(srv, "refused");

    if (!json_is_object(srv))
        return;
    served(f, srv, now);
    if (json_is_array(json_object_get(srv, "vhosts")) &&
        json_array_size(json_object_get(srv, "vhosts"))) {
        size_t i;
        const json_t *v;

        fputs("<tr><th>virtual hosts</th><td>", f);
        json_array_foreach(json_object_get(srv, "vhosts"), i, v)
        {
            fputs(i ? ", " : "", f);
            value(f, v);
        }
        fputs("</td></tr>\n", f);
    }
    if (json_is_object(refused)) {
        fprintf(f, "<tr><th>refused</th><td class=\"err\">v%lld: ", num(refused, "version"));
        value(f, json_object_get(refused, "reason"));
        fputs("</td></tr>\n", f);
    }
    if (json_is_string(json_object_get(srv, "fallback_reason")))
        row(f, "fallback because", json_object_get(srv, "fallback_reason"));
}

/* A failed on-change command, re-run by every sync until it succeeds. */
static void hook(FILE *f, const json_t *c, time_t now)
{
    const json_t *hp = json_object_get(c, "hook_pending");

    if (!json_is_object(hp))
        return;
    fputs("<div class=\"hook\"><h3>on-change command pending</h3><table>\n", f);
    fprintf(f, "<tr><th>command</th><td><code>");
    value(f, json_object_get(hp, "command"));
    fputs("</code></td></tr>\n", f);
    fprintf(f, "<tr><th>for version</th><td>v%lld</td></tr>\n", num(hp, "version"));
    row(f, "exit status", json_object_get(hp, "exit_status"));
    fputs("<tr><th>error</th><td class=\"err\">", f);
    value(f, json_object_get(hp, "error"));
    fputs("</td></tr>\n", f);
    row(f, "attempts", json_object_get(hp, "attempts"));
    time_row(f, "failing since", json_object_get(hp, "since"), now);
    time_row(f, "next attempt", json_object_get(hp, "next_attempt"), now);
    fputs("</table></div>\n", f);
}

/* `deploy =`: each cloud resource's last deployment, and one that waits to be retried. */
static void deployments(FILE *f, const json_t *c, time_t now)
{
    const json_t *rows = json_object_get(c, "deployments"),
                 *d = json_object_get(c, "deploy_pending");
    const json_t *r;
    size_t i;

    if (!json_is_array(rows) || json_array_size(rows) == 0)
        return;
    fputs("<div class=\"hook\"><h3>deployment to cloud products</h3><table>\n", f);
    json_array_foreach(rows, i, r)
    {
        fputs("<tr><th>", f);
        value(f, json_object_get(r, "resource"));
        fputs("</th><td>", f);
        value(f, json_object_get(r, "status"));
        fputs(", certificate ", f);
        value(f, json_object_get(r, "certificate"));
        if (json_is_string(json_object_get(r, "error"))) {
            fputs(" <span class=\"err\">", f);
            value(f, json_object_get(r, "error"));
            fputs("</span>", f);
        }
        fputs("</td></tr>\n", f);
    }
    if (json_is_object(d)) {
        row(f, "pending attempts", json_object_get(d, "attempts"));
        time_row(f, "failing since", json_object_get(d, "since"), now);
        time_row(f, "next attempt", json_object_get(d, "next_attempt"), now);
    }
    fputs("</table></div>\n", f);
}

static void sync_rows(FILE *f, const json_t *c, time_t now)
{
    const json_t *held = json_object_get(c, "held");

    fputs("<tr><th>last sync</th><td>", f);
    value(f, json_object_get(c, "last_sync"));
    if (json_is_string(json_object_get(c, "last_sync_at"))) {
        fputs(", ", f);
        when(f, json_object_get(c, "last_sync_at"), now);
    }
    fputs("</td></tr>\n", f);
    time_row(f, "last success", json_object_get(c, "last_success_at"), now);
    if (num(c, "consecutive_failures") > 0)
        row(f, "failures in a row", json_object_get(c, "consecutive_failures"));
    if (json_is_string(json_object_get(c, "last_error"))) {
        fputs("<tr><th>last error</th><td class=\"err\">", f);
        value(f, json_object_get(c, "last_error"));
        fputs("</td></tr>\n", f);
    }
    if (json_is_object(held)) {
        fprintf(f, "<tr><th>held</th><td>at v%lld since ", num(held, "version"));
        when(f, json_object_get(held, "since"), now);
        fputs(" (rollback); <code>certsync release ", f);
        esc(f, str(c, "name"));
        fputs("</code> resumes</td></tr>\n", f);
    }
}

static void card(FILE *f, const json_t *c, time_t now)
{
    char label[64];
    const char *cls = judge(c, label, sizeof(label));
    const json_t *n;
    size_t i;

    fprintf(f, "<section class=\"card %s\">\n<h2><span>", cls);
    esc(f, str(c, "name"));
    fprintf(f, "</span><span class=\"badge %s\">", cls);
    esc(f, label);
    fputs("</span></h2>\n<p class=\"names\">", f);
    json_array_foreach(json_object_get(c, "names"), i, n)
    {
        fputs(i ? ", " : "", f);
        value(f, n);
    }
    fputs("</p>\n", f);
    lifetime(f, c, now);
    fputs("<table>\n<tr><th>version in the store</th><td>", f);
    if (json_is_integer(json_object_get(c, "version")))
        fprintf(f, "<b>v%lld</b>", num(c, "version"));
    else
        fputs("none", f);
    fputs("</td></tr>\n", f);
    server_rows(f, json_object_get(c, SERVER), now);
    sync_rows(f, c, now);
    row(f, "provider", json_object_get(c, "provider"));
    fputs("<tr><th>SHA-256</th><td><code>", f);
    value(f, json_object_get(c, "fingerprint_sha256"));
    fputs("</code></td></tr>\n</table>\n", f);
    hook(f, c, now);
    deployments(f, c, now);
    fputs("</section>\n", f);
}

/* The server's own sync (certsync_sync / CertSyncSync), when it says. */
static void server_card(FILE *f, const json_t *srv, time_t now)
{
    const json_t *sync = json_object_get(srv, "sync");
    int failing = num(sync, "failures_in_a_row") > 0;

    if (!json_is_object(sync))
        return;
    fprintf(f, "<section class=\"card %s\">\n<h2><span>sync inside the server</span></h2>\n",
            failing ? "warn" : "ok");
    if (!json_is_true(json_object_get(sync, "enabled"))) {
        fputs("<p>off: <code>certsync sync</code> (timer or cron) keeps the store current</p>\n"
              "</section>\n",
              f);
        return;
    }
    fputs("<table>\n", f);
    row(f, "every (s)", json_object_get(sync, "interval_s"));
    row(f, "runs", json_object_get(sync, "runs"));
    time_row(f, "last run", json_object_get(sync, "last_end"), now);
    time_row(f, "next run", json_object_get(sync, "next_run"), now);
    row(f, "failures in a row", json_object_get(sync, "failures_in_a_row"));
    if (json_is_string(json_object_get(sync, "last_error"))) {
        fputs("<tr><th>last error</th><td class=\"err\">", f);
        value(f, json_object_get(sync, "last_error"));
        fputs("</td></tr>\n", f);
    }
    fputs("</table>\n</section>\n", f);
}

static void page(FILE *f, const json_t *doc, const char *title, time_t now)
{
    const json_t *srv = json_object_get(doc, SERVER), *c;
    char at[CS_TIME_ISO_SIZE];
    size_t i;

    fprintf(f, page_head, title);
    fputs("<h1>Certificates of this ", f);
    esc(f, title);
    fputs("</h1>\n<p class=\"sub\">", f);
    if (json_is_string(json_object_get(srv, "module"))) {
        esc(f, str(srv, "module"));
        fprintf(f, ", pid %lld &middot; ", num(srv, "pid"));
    }
    fputs("config <code>", f);
    esc(f, str(doc, "config"));
    fputs("</code> &middot; store <code>", f);
    esc(f, str(doc, "store"));
    cs_time_iso(now, at);
    fprintf(f, "</code> &middot; as of %.10s %.8s UTC</p>\n<div class=\"cards\">\n", at, at + 11);
    json_array_foreach(json_object_get(doc, "certificates"), i, c) card(f, c, now);
    if (json_array_size(json_object_get(doc, "certificates")) == 0)
        fputs("<section class=\"card warn\"><h2>no certificates</h2><p>certsync.conf declares "
              "no <code>[cert NAME]</code></p></section>\n",
              f);
    server_card(f, srv, now);
    fputs("</div>\n</body></html>\n", f);
}

cs_rc cs_status_html(const json_t *doc, const char *title, time_t now, char **out)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    int bad;

    *out = NULL;
    if (f == NULL)
        return cs_error_set(CS_ENOMEM, "out of memory for the status page");
    page(f, doc, title ? title : "server", now ? now : time(NULL));
    bad = ferror(f);
    if (fclose(f) != 0 || bad) {
        free(text);
        return cs_error_set(CS_ENOMEM, "out of memory for the status page");
    }
    *out = text;
    return CS_OK;
}
