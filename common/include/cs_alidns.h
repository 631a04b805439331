/*
 * certsync: TXT records in Alibaba Cloud DNS (Alidns OpenAPI 2015-01-09, RPC
 * style, the same signer and credential chain as the certificates service):
 * the dns-01 answers of the acme provider. The zone that holds a name is the
 * longest of its parent names that the account has (DescribeDomainRecords
 * answers InvalidDomainName.NoExist for the others).
 */
#ifndef CS_ALIDNS_H
#define CS_ALIDNS_H

#include "cs_config.h"
#include "cs_error.h"

#define CS_ALIDNS_VERSION "2015-01-09"
#define CS_ALIDNS_ENDPOINT "https://alidns.aliyuncs.com"

typedef struct cs_alidns cs_alidns;

/*
 * A client with pv's credentials and ca-file, at CS_ALIDNS_ENDPOINT or pv's
 * endpoint (acme) or alidns-endpoint (aliyun-cas).
 */
cs_rc cs_alidns_new(const cs_provider_conf *pv, cs_alidns **out);
void cs_alidns_free(cs_alidns *d);

/* The TXT record fqdn = value (kept as it is when it exists already). */
cs_rc cs_alidns_txt_add(cs_alidns *d, const char *fqdn, const char *value);

/* Every TXT record fqdn = value is deleted. */
cs_rc cs_alidns_txt_remove(cs_alidns *d, const char *fqdn, const char *value);

#endif
