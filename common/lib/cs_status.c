/* certsync: the one status document (see cs_status.h and README.md "Status"). */
#include "cs_status.h"

#include "cs_time.h"

json_t *cs_status_time(time_t t)
{
    char buf[CS_TIME_ISO_SIZE];

    return t ? json_string(cs_time_iso(t, buf)) : json_null();
}

static json_t *text_or_null(const char *s)
{
    return s && *s ? json_string(s) : json_null();
}

static json_t *names_json(const cs_cert_info *info)
{
    json_t *a = json_array();
    size_t i;

    for (i = 0; a && i < info->n_names; i++)
        if (json_array_append_new(a, json_string(info->names[i])) != 0) {
            json_decref(a);
            return NULL;
        }
    return a;
}

/* The current version (null fields when there is none, and why). */
static void current_json(json_t *j, cs_store *s, const char *name, time_t now)
{
    cs_cert_info info;
    int have = cs_store_info(s, name, 0, &info) == CS_OK;
    const char *state = !have ? "fallback" : info.not_after <= now ? "expired" : "ok";

    /* no current version: a server with a module serves the self-signed fallback, and 503 */
    json_object_set_new(j, "state", json_string(state));
    json_object_set_new(j, "fallback", json_boolean(!have));
    json_object_set_new(j, "version", have ? json_integer(info.version) : json_null());
    json_object_set_new(j, "error_current",
                        have                              ? json_null()
                        : cs_error_code() == CS_ENOTFOUND ? json_string("no version yet")
                                                          : json_string(cs_error_last()));
    json_object_set_new(j, "fingerprint_sha256",
                        have ? json_string(info.fingerprint) : json_null());
    json_object_set_new(j, "serial", have ? text_or_null(info.serial) : json_null());
    json_object_set_new(j, "provider", have ? text_or_null(info.provider) : json_null());
    json_object_set_new(j, "remote_id", have ? text_or_null(info.remote_id) : json_null());
    json_object_set_new(j, "names", have ? names_json(&info) : json_array());
    json_object_set_new(j, "not_before", cs_status_time(have ? info.not_before : 0));
    json_object_set_new(j, "not_after", cs_status_time(have ? info.not_after : 0));
    json_object_set_new(j, "days_left",
                        have ? json_integer((json_int_t)((info.not_after - now) / 86400))
                             : json_null());
    json_object_set_new(j, "fetched_at", cs_status_time(have ? info.fetched_at : 0));
    if (have)
        cs_cert_info_clear(&info);
}

/* {"version": 3, "since": "..."}: a rollback holds it there until `certsync release`. */
static json_t *held_json(const cs_sync_state *st)
{
    json_t *since = cs_status_time(st->held_since);

    return since ? json_pack("{s:I, s:o}", "version", (json_int_t)st->held, "since", since) : NULL;
}

/* The last sync, by whoever ran it; a state.json the store refuses (a FIFO) is said so. */
static void last_sync_json(json_t *j, cs_store *s, const char *name)
{
    cs_sync_state st;
    int readable = cs_store_sync_state(s, name, &st) == CS_OK;

    json_object_set_new(j, "last_sync",
                        json_string(readable ? cs_sync_result_name(st.result) : "unreadable"));
    json_object_set_new(j, "last_sync_at", cs_status_time(readable ? st.at : 0));
    json_object_set_new(j, "last_success_at", cs_status_time(readable ? st.last_success : 0));
    json_object_set_new(j, "last_error",
                        readable ? text_or_null(st.error) : json_string(cs_error_last()));
    json_object_set_new(j, "held", readable && st.held ? held_json(&st) : json_null());
}

/* name, the 13 keys of current_json and the 5 of last_sync_json: a set_new that failed is
   a key missing, so the document is checked once by its size */
#define CERT_KEYS 19

cs_rc cs_status_cert(cs_store *s, const char *name, time_t now, json_t **out)
{
    json_t *j = json_object();

    *out = NULL;
    if (j == NULL)
        return cs_error_set(CS_ENOMEM, "out of memory");
    json_object_set_new(j, "name", json_string(name));
    current_json(j, s, name, now ? now : time(NULL));
    last_sync_json(j, s, name);
    if (json_object_size(j) != CERT_KEYS) {
        json_decref(j);
        return cs_error_set(CS_ENOMEM, "out of memory building the status of '%s'", name);
    }
    *out = j;
    return CS_OK;
}

cs_rc cs_status_document(const cs_config *c, cs_store *s, time_t now, json_t **out)
{
    json_t *j = json_object(), *certs = json_array(), *one;
    cs_rc rc = CS_OK;
    size_t i;

    *out = NULL;
    if (j == NULL || certs == NULL) {
        json_decref(j);
        json_decref(certs);
        return cs_error_set(CS_ENOMEM, "out of memory");
    }
    for (i = 0; rc == CS_OK && i < c->n_certs; i++) {
        rc = cs_status_cert(s, c->certs[i].name, now, &one);
        if (rc == CS_OK && json_array_append_new(certs, one) != 0)
            rc = cs_error_set(CS_ENOMEM, "out of memory building the status document");
    }
    if (rc == CS_OK && (json_object_set_new(j, "config", json_string(c->path)) != 0 ||
                        json_object_set_new(j, "store", json_string(cs_store_path(s))) != 0))
        rc = cs_error_set(CS_ENOMEM, "out of memory building the status document");
    /* set_new takes certs even when it fails */
    if (rc == CS_OK && json_object_set_new(j, "certificates", certs) != 0)
        rc = cs_error_set(CS_ENOMEM, "out of memory building the status document");
    else if (rc != CS_OK)
        json_decref(certs);
    if (rc != CS_OK) {
        json_decref(j);
        return rc;
    }
    *out = j;
    return CS_OK;
}
