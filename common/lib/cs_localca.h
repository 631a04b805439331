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

#endif
