/*
 * certsync: the local-ca provider, the embedded default. A root and an
 * issuing intermediate live in <store>/local-ca/ (keys 0600), created on
 * first use; leaves are issued for a managed certificate's names.
 * Clients that should trust it use <store>/local-ca/root.pem.
 */
#ifndef CS_LOCALCA_H
#define CS_LOCALCA_H

#include "cs_bundle.h"
#include "cs_config.h"
#include "cs_store.h"

/* Create the CA if it does not exist yet (ca_lifetime in seconds). */
cs_rc cs_localca_ensure(cs_store *s, long ca_lifetime);

/* Issue a leaf (leaf + intermediate) for cc's names, key type and lifetime. */
cs_rc cs_localca_issue(cs_store *s, const cs_cert_conf *cc, long ca_lifetime, cs_bundle **out);

/* How long an OCSP answer of the local CA is valid (refreshed at half of it). */
#define CS_LOCALCA_OCSP_VALIDITY (4L * 86400)

/*
 * The local CA is its certificates' issuer, so it answers OCSP for them
 * itself, with no responder: a DER response for b's leaf ("revoked" when
 * revoked is set), signed by the issuing CA, valid CS_LOCALCA_OCSP_VALIDITY
 * from now. Fails when this CA did not issue the leaf (*der malloc'd).
 */
cs_rc cs_localca_ocsp(cs_store *s, const cs_bundle *b, int revoked, time_t now, char **der,
                      size_t *len);

#endif
