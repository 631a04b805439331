/*
 * ACME Renewal Information (RFC 9773): the CA's suggested renewal window for
 * a certificate, asked at renewalInfo/<certID> when the directory offers it.
 * A time in the window is picked at random once and kept in the store
 * (ari-<cert>.json), so that every sync until the next check agrees; the
 * check is repeated after the Retry-After the CA gives (default 6 hours).
 */
#include <openssl/rand.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cs_acme.h"
#include "cs_fs.h"
#include "cs_time.h"

#define ARI_DEFAULT_RECHECK_S (6 * 3600)
#define ARI_MAX_RECHECK_S (24 * 3600)

cs_rc cs_acme_ari_cert_id(X509 *leaf, char **out)
{
    const ASN1_OCTET_STRING *kid = X509_get0_authority_key_id(leaf);
    const ASN1_INTEGER *serial = X509_get0_serialNumber(leaf);
    unsigned char *der = NULL, *p;
    char *k = NULL, *s = NULL;
    int len;

    *out = NULL;
    if (kid == NULL)
        return cs_error_set(CS_EINVAL, "the certificate has no authority key identifier, which "
                                       "ARI needs to name it");
    /* the serial's DER content octets, with the leading zero of a positive integer */
    len = i2d_ASN1_INTEGER((ASN1_INTEGER *)serial, &der);
    if (len > 2 && der[1] < 0x80) {
        p = der + 2;
        k = cs_acme_b64url(ASN1_STRING_get0_data(kid), (size_t)ASN1_STRING_length(kid));
        s = cs_acme_b64url(p, (size_t)len - 2);
    }
    OPENSSL_free(der);
    if (k && s && asprintf(out, "%s.%s", k, s) < 0)
        *out = NULL;
    free(k);
    free(s);
    return *out ? CS_OK : cs_error_set(CS_ENOMEM, "cannot make the certificate's ARI id");
}

cs_rc cs_acme_rfc3339(const char *text, time_t *t)
{
    struct tm tm;
    const char *p;
    long off = 0;

    memset(&tm, 0, sizeof(tm));
    if (text == NULL || (p = strptime(text, "%Y-%m-%dT%H:%M:%S", &tm)) == NULL)
        return cs_error_set(CS_EINVAL, "'%s' is not an RFC 3339 time", text ? text : "(none)");
    if (*p == '.')
        for (p++; *p >= '0' && *p <= '9'; p++)
            ;
    if ((*p == '+' || *p == '-') && strlen(p) == 6 && p[3] == ':')
        off = (*p == '-' ? -1 : 1) * (atol(p + 1) * 3600 + atol(p + 4) * 60);
    else if (!((*p == 'Z' || *p == 'z') && p[1] == '\0'))
        return cs_error_set(CS_EINVAL, "'%s' is not an RFC 3339 time", text);
    *t = timegm(&tm) - off;
    return CS_OK;
}

cs_rc cs_acme_ari_window(const char *json, size_t len, cs_acme_window *w)
{
    json_t *j = json_loadb(json, len, 0, NULL), *sw = json_object_get(j, "suggestedWindow");
    cs_rc rc = CS_OK;

    if (!json_is_object(sw) ||
        cs_acme_rfc3339(json_string_value(json_object_get(sw, "start")), &w->start) != CS_OK ||
        cs_acme_rfc3339(json_string_value(json_object_get(sw, "end")), &w->end) != CS_OK)
        rc = cs_error_set(CS_EPROVIDER, "ACME CA: the renewal information has no valid "
                                        "suggestedWindow");
    else if (w->end < w->start)
        rc = cs_error_set(CS_EPROVIDER, "ACME CA: the suggested renewal window ends before it "
                                        "starts");
    json_decref(j);
    return rc;
}

time_t cs_acme_ari_pick(const cs_acme_window *w, double r)
{
    /* RFC 9773 4.2: a uniformly random time in the window spreads the CA's load */
    if (r < 0 || r >= 1)
        r = 0;
    return w->start + (time_t)((double)(w->end - w->start) * r);
}

/* ---- the kept state: ari-<cert>.json {id, start, end, chosen, recheck} ---- */

typedef struct {
    char id[160];
    cs_acme_window w;
    time_t chosen, recheck;
} ari_state;

static void ari_file(char *buf, size_t size, const char *cert)
{
    snprintf(buf, size, "ari-%s.json", cert);
}

static int state_load(cs_acme *a, int dir, const char *cert, ari_state *st)
{
    char file[96], *text = NULL;
    size_t len;
    json_t *j;
    int ok;

    ari_file(file, sizeof(file), cert);
    if (cs_fs_read_at(dir, file, 16 * 1024, cs_store_owner(cs_acme_store(a)), &text, &len) !=
        CS_OK) {
        cs_error_clear();
        return 0;
    }
    j = json_loadb(text, len, 0, NULL);
    free(text);
    ok = json_is_string(json_object_get(j, "id"));
    if (ok) {
        snprintf(st->id, sizeof(st->id), "%s", json_string_value(json_object_get(j, "id")));
        st->w.start = (time_t)json_integer_value(json_object_get(j, "start"));
        st->w.end = (time_t)json_integer_value(json_object_get(j, "end"));
        st->chosen = (time_t)json_integer_value(json_object_get(j, "chosen"));
        st->recheck = (time_t)json_integer_value(json_object_get(j, "recheck"));
    }
    json_decref(j);
    return ok;
}

static void state_save(cs_acme *a, int dir, const char *cert, const ari_state *st)
{
    json_t *j = json_pack("{s:s,s:I,s:I,s:I,s:I}", "id", st->id, "start", (json_int_t)st->w.start,
                          "end", (json_int_t)st->w.end, "chosen", (json_int_t)st->chosen, "recheck",
                          (json_int_t)st->recheck);
    char file[96], *text = j ? json_dumps(j, JSON_INDENT(2)) : NULL;

    (void)a;
    ari_file(file, sizeof(file), cert);
    if (text == NULL || cs_fs_write_at(dir, file, text, strlen(text), 0600, (gid_t)-1, 0) != CS_OK)
        cs_error_clear(); /* asked again at the next sync */
    free(text);
    json_decref(j);
}

static double random_unit(void)
{
    unsigned r;

    if (RAND_bytes((unsigned char *)&r, sizeof(r)) != 1)
        r = (unsigned)time(NULL) * 2654435761u;
    return (double)r / 4294967296.0;
}

/* GET renewalInfo/<id>: the window and when to ask again. */
static cs_rc fetch_window(cs_acme *a, const char *base, ari_state *st)
{
    char *url = NULL;
    cs_http_response r;
    cs_rc rc;

    if (asprintf(&url, "%s%s%s", base, base[strlen(base) - 1] == '/' ? "" : "/", st->id) < 0)
        return cs_error_set(CS_ENOMEM, "out of memory");
    rc = cs_acme_get(a, url, &r);
    if (rc == CS_OK && r.status != 200)
        rc = cs_error_set(CS_EPROVIDER, "ACME CA: %s answered HTTP %ld", url, r.status);
    if (rc == CS_OK)
        rc = cs_acme_ari_window(r.body, r.len, &st->w);
    if (rc == CS_OK) {
        long ra = cs_acme_retry_after(r.retry_after, ARI_DEFAULT_RECHECK_S);

        st->recheck = time(NULL) + (ra < 60 ? 60 : ra > ARI_MAX_RECHECK_S ? ARI_MAX_RECHECK_S : ra);
        st->chosen = cs_acme_ari_pick(&st->w, random_unit());
    }
    cs_http_response_clear(&r);
    free(url);
    return rc;
}

/* The window kept, or asked for again when its time to recheck has come. */
static void current_window(cs_acme *a, int dir, const char *cert, time_t now, ari_state *st)
{
    ari_state kept = {0};
    const char *base;

    if (state_load(a, dir, cert, &kept) && strcmp(kept.id, st->id) == 0 && kept.recheck > now) {
        *st = kept;
        return;
    }
    st->chosen = -1; /* none: renew-before decides */
    if (cs_acme_directory(a) != CS_OK) {
        cs_error_clear();
        if (strcmp(kept.id, st->id) == 0)
            st->chosen = kept.chosen; /* the CA is away: its last suggestion stands */
        return;
    }
    if ((base = cs_acme_resource(a, "renewalInfo")) == NULL)
        st->recheck = now + ARI_MAX_RECHECK_S; /* the directory offers no ARI */
    else if (fetch_window(a, base, st) != CS_OK) {
        cs_error_clear();
        st->recheck = now + ARI_DEFAULT_RECHECK_S / 6;
    }
    state_save(a, dir, cert, st);
}

int cs_acme_ari_due(cs_acme *a, const char *cert, X509 *leaf, time_t now, char *reason, size_t size)
{
    ari_state st = {0};
    char *id = NULL, at[CS_TIME_ISO_SIZE];
    int dir;

    if (cs_acme_ari_cert_id(leaf, &id) != CS_OK || cs_acme_area(a, &dir) != CS_OK) {
        cs_error_clear();
        free(id);
        return 0;
    }
    snprintf(st.id, sizeof(st.id), "%s", id);
    free(id);
    current_window(a, dir, cert, now, &st);
    close(dir);
    if (st.chosen < 0 || st.chosen > now)
        return 0;
    snprintf(reason, size, "the CA suggests renewing from %s (ARI)", cs_time_iso(st.w.start, at));
    return 1;
}
