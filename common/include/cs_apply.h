/*
 * certsync: applying for a certificate from the service, as a state machine
 * that a driver (the CLI's `certsync apply`, a sync, later ACME) steps.
 *
 * cs_apply_start() places the order (or continues an existing one); every
 * cs_apply_step() asks the service once (DescribeCertificateState) and says
 * where the order is: waiting for domain validation (with what to publish),
 * in review, issued (with the certificate id), failed (with the reason), or
 * another state of the service's (e.g. "payed" after a withdrawal). The
 * driver decides how often to ask and when to give up; nothing is printed.
 *
 * Not thread-safe: one cs_apply belongs to one thread.
 */
#ifndef CS_APPLY_H
#define CS_APPLY_H

#include "cs_bundle.h"
#include "cs_error.h"
#include "cs_store.h"

typedef struct cs_aliyun cs_aliyun;
typedef struct cs_apply cs_apply;

/* How the service validates the domain. */
typedef enum { CS_APPLY_FILE, CS_APPLY_DNS } cs_apply_validation;

typedef struct {
    const char *domain;           /* the name applied for */
    cs_apply_validation validate; /* for a new order */
    const char *product;          /* NULL: digicert-free-1-free */
    /* all three or none: CreateCertificateRequest (a DV order whose CSR the service makes) */
    const char *username, *phone, *email;
    const char *order; /* an existing order to continue (digits); NULL: apply anew */
} cs_apply_request;

typedef enum {
    CS_APPLY_PENDING, /* waiting for domain validation: publish state->validation */
    CS_APPLY_REVIEW,  /* validated; the service reviews the order */
    CS_APPLY_ISSUED,  /* issued: state->cert_id; cs_apply_bundle() gives it */
    CS_APPLY_FAILED,  /* the review failed: state->reason */
    CS_APPLY_OTHER    /* any other state the service names (paid, unknown): nothing to do */
} cs_apply_phase;

/*
 * Where an order is after one step. The strings are borrowed from the
 * cs_apply: valid until its next step or its free.
 */
typedef struct {
    cs_apply_phase phase;
    const char *type;  /* the service's word: domain_verify, process, certificate, ... */
    const char *words; /* the console's words for it: "pending verification", ... */
    struct {
        cs_apply_validation kind;
        int fresh;                 /* not seen in an earlier step: publish it now */
        const char *uri, *content; /* FILE: the URL path and the file's content */
        const char *record_domain; /* DNS: the record's name, */
        const char *record_type;   /*      type */
        const char *record_value;  /*      and value */
    } validation;                  /* PENDING only */
    char cert_id[32];              /* ISSUED: the certificate's id in the service */
    char reason[160];              /* FAILED: what failed */
} cs_apply_state;

/*
 * Apply for req->domain (CreateCertificateForPackageRequest, or with contact
 * details CreateCertificateRequest), or with req->order continue that order
 * without asking the service. client is borrowed and must outlive *out.
 */
cs_rc cs_apply_start(cs_aliyun *client, const cs_apply_request *req, cs_apply **out);

/* The order's id in the service (borrowed). */
const char *cs_apply_order(const cs_apply *ap);

/* Ask the service once where the order is. */
cs_rc cs_apply_step(cs_apply *ap, cs_apply_state *state);

/*
 * Put the FILE answer of the last step (PENDING, FILE) into the store's
 * challenge area, where the certsync modules answer it:
 * <store>/challenges/<domain>/pki-validation/fileauth.txt.
 */
cs_rc cs_apply_publish(cs_apply *ap, cs_store *s);

/*
 * The certificate and key of the last step (ISSUED), loaded and its chain
 * verified against the client's trust roots; owned by the caller. The key
 * is wiped from the service's answer.
 */
cs_rc cs_apply_bundle(cs_apply *ap, cs_bundle **out);

/*
 * The last step's answer as one JSON line (no newline), without the private
 * key, with "OrderId" and "status" (the console's words) added; malloc'd,
 * NULL when out of memory or before the first step.
 */
char *cs_apply_json(const cs_apply *ap);

/* The console's words for a state the service names; the name itself when unknown. */
const char *cs_apply_words(const char *type);

/*
 * FILE validation checked before anything is ordered (`certsync apply --check`):
 * fetch http://DOMAIN/.well-known/pki-validation/fileauth.txt as the service
 * would (plain HTTP, port 80, no redirect followed) and compare its body with
 * expected, the content the caller has just written where the server answers
 * it. connect_to ("HOST:PORT", or NULL) reaches the server there instead of
 * where DOMAIN resolves, with the URL and Host header unchanged. CS_OK when
 * the server answers expected; else CS_ENOTFOUND with what came back and
 * what to do.
 */
cs_rc cs_apply_check_answer(const char *domain, const char *connect_to, const char *expected);

/* Ends the application; the answers (and any key in them) are wiped. NULL is a no-op. */
void cs_apply_free(cs_apply *ap);

#endif
