#include "cs_bundle.h"

#include <openssl/decoder.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cs_fs.h"
#include "cs_password.h"

#define CS_MAX_PEM_FILE (1024 * 1024)
/* Real chains hold 1-3 issuers; a huge one costs every handshake and the loading event loop. */
#define CS_MAX_ISSUERS 10
#define CS_MAX_CHAIN_BYTES (64 * 1024)

struct cs_bundle {
    X509 *leaf;
    STACK_OF(X509) * issuers; /* in order: issuer of leaf first */
    EVP_PKEY *key;
};

void cs_strv_free(char **v)
{
    size_t i;

    if (v == NULL)
        return;
    for (i = 0; v[i]; i++)
        free(v[i]);
    free(v);
}

static void subject_str(X509 *x, char *buf, size_t size)
{
    X509_NAME_oneline(X509_get_subject_name(x), buf, (int)size);
}

static int is_pem(const char *data, size_t len)
{
    return memmem(data, len, "-----BEGIN ", 11) != NULL;
}

static size_t count_marker(const char *data, size_t len, const char *marker)
{
    size_t n = 0, mlen = strlen(marker);
    const char *p = data, *end = data + len;

    while ((p = memmem(p, (size_t)(end - p), marker, mlen)) != NULL) {
        n++;
        p += mlen;
    }
    return n;
}

static cs_rc too_long(size_t issuers, const char *origin)
{
    return cs_error_set(CS_EBADCERT,
                        "%s: the chain holds %zu certificates besides the leaf; at most %d are "
                        "accepted (a real chain has 1 to 3): give only the intermediates of "
                        "this certificate",
                        origin, issuers, CS_MAX_ISSUERS);
}

/* Append x to out; x is freed when out of memory. */
static cs_rc push_cert(STACK_OF(X509) * out, X509 *x)
{
    if (sk_X509_push(out, x) > 0)
        return CS_OK;
    X509_free(x);
    return cs_error_set(CS_ENOMEM, "out of memory collecting certificates");
}

/* Append every certificate in data (PEM, or one DER) to out. */
static cs_rc read_certs(const char *data, size_t len, STACK_OF(X509) * out, const char *origin)
{
    size_t want, got = 0;
    X509 *x;
    BIO *bio;

    if (len > CS_MAX_CHAIN_BYTES)
        return cs_error_set(CS_EBADCERT,
                            "%s is %zu bytes; certificates and chains over %d KiB are refused "
                            "(a real chain is a few KiB): give only the certificate and its "
                            "intermediates",
                            origin, len, CS_MAX_CHAIN_BYTES / 1024);
    if (!is_pem(data, len)) {
        const unsigned char *p = (const unsigned char *)data;

        x = d2i_X509(NULL, &p, (long)len);
        if (x == NULL || p != (const unsigned char *)data + len) {
            X509_free(x);
            ERR_clear_error();
            return cs_error_set(CS_EBADCERT,
                                "%s holds neither a PEM certificate nor one DER certificate; "
                                "give the certificate file as downloaded from your CA",
                                origin);
        }
        return push_cert(out, x);
    }
    want = count_marker(data, len, "-----BEGIN CERTIFICATE-----");
    if (want == 0)
        return cs_error_set(CS_EBADCERT,
                            "%s has no '-----BEGIN CERTIFICATE-----' block; is it a key or "
                            "a CSR instead of a certificate?",
                            origin);
    if (want + (size_t)sk_X509_num(out) > CS_MAX_ISSUERS + 1)
        return too_long(want + (size_t)sk_X509_num(out) - 1, origin);
    if ((bio = BIO_new_mem_buf(data, (int)len)) == NULL)
        return cs_error_set(CS_ENOMEM, "out of memory reading %s", origin);
    while ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
        if (push_cert(out, x) != CS_OK) {
            BIO_free(bio);
            return cs_error_code();
        }
        got++;
    }
    BIO_free(bio);
    ERR_clear_error();
    if (got != want || count_marker(data, len, "-----END CERTIFICATE-----") != want)
        return cs_error_set(CS_EBADCERT,
                            "%s: certificate %zu of %zu is truncated or malformed PEM; "
                            "download or copy the file again",
                            origin, got + 1, want);
    return CS_OK;
}

static int looks_encrypted(const char *data, size_t len)
{
    if (is_pem(data, len))
        return memmem(data, len, "ENCRYPTED", 9) != NULL;
    {
        const unsigned char *p = (const unsigned char *)data;
        X509_SIG *sig = d2i_X509_SIG(NULL, &p, (long)len);
        int enc = sig != NULL;

        X509_SIG_free(sig);
        ERR_clear_error();
        return enc;
    }
}

static cs_rc check_key_type(EVP_PKEY *key, const char *origin)
{
    char group[64];
    int bits = EVP_PKEY_get_bits(key);

    if (EVP_PKEY_is_a(key, "RSA")) {
        if (bits < 2048 || bits > 4096)
            return cs_error_set(CS_EBADCERT,
                                "%s: an RSA key of %d bits is not supported; use RSA 2048 "
                                "to 4096 bits or ECDSA P-256/P-384",
                                origin, bits);
        return CS_OK;
    }
    if (EVP_PKEY_is_a(key, "EC") && EVP_PKEY_get_group_name(key, group, sizeof(group), NULL) == 1 &&
        (strcmp(group, "prime256v1") == 0 || strcmp(group, "secp384r1") == 0))
        return CS_OK;
    return cs_error_set(CS_EBADCERT,
                        "%s: the key type %s is not supported; use RSA 2048 to 4096 bits "
                        "or ECDSA P-256/P-384",
                        origin, EVP_PKEY_get0_type_name(key));
}

static cs_rc read_key(const char *data, size_t len, const char *password, EVP_PKEY **out,
                      const char *origin)
{
    OSSL_DECODER_CTX *dctx;
    EVP_PKEY *key = NULL;
    const unsigned char *p = (const unsigned char *)data;
    size_t left = len;
    int enc = looks_encrypted(data, len);

    if (is_pem(data, len) && memmem(data, len, "PRIVATE KEY-----", 16) == NULL)
        return cs_error_set(CS_EBADCERT,
                            "%s has no '-----BEGIN ... PRIVATE KEY-----' block; is it a "
                            "certificate instead of the key?",
                            origin);
    if (enc && password == NULL)
        return cs_error_set(CS_EPASSWORD,
                            "%s is an encrypted private key; give its password in a file "
                            "with --key-password-file",
                            origin);
    dctx = OSSL_DECODER_CTX_new_for_pkey(&key, NULL, NULL, NULL, EVP_PKEY_KEYPAIR, NULL, NULL);
    if (dctx == NULL)
        return cs_error_set(CS_ENOMEM, "cannot set up a key decoder: %s", cs_error_openssl());
    if (password)
        OSSL_DECODER_CTX_set_passphrase(dctx, (const unsigned char *)password, strlen(password));
    if (!OSSL_DECODER_from_data(dctx, &p, &left) || key == NULL) {
        OSSL_DECODER_CTX_free(dctx);
        ERR_clear_error();
        if (enc)
            return cs_error_set(CS_EPASSWORD,
                                "%s: cannot decrypt the private key: the password is wrong "
                                "or the file is damaged",
                                origin);
        return cs_error_set(CS_EBADCERT,
                            "%s: cannot read a private key (truncated, damaged, or not "
                            "PKCS#1, SEC1 or PKCS#8)",
                            origin);
    }
    OSSL_DECODER_CTX_free(dctx);
    if (check_key_type(key, origin) != CS_OK) {
        EVP_PKEY_free(key);
        return cs_error_code();
    }
    *out = key;
    return CS_OK;
}

int cs_key_matches_cert(EVP_PKEY *key, X509 *cert)
{
    EVP_PKEY *pub = X509_get0_pubkey(cert);
    int r = pub != NULL && EVP_PKEY_eq(pub, key) == 1;

    ERR_clear_error();
    return r;
}

static int issued_by(X509 *child, X509 *parent)
{
    EVP_PKEY *pub = X509_get0_pubkey(parent);
    int r = X509_check_issued(parent, child) == X509_V_OK && pub && X509_verify(child, pub) == 1;

    ERR_clear_error();
    return r;
}

static int self_signed(X509 *x)
{
    return X509_check_issued(x, x) == X509_V_OK;
}

/*
 * Pick the leaf (the certificate of the key), then follow issuers. A cert that
 * is left over does not belong to this chain, and that is an error: a wrong
 * intermediate served to clients breaks some of them.
 */
static cs_rc assemble(STACK_OF(X509) * certs, EVP_PKEY *key, cs_bundle **out, const char *origin)
{
    STACK_OF(X509) *rest = sk_X509_new_null(), *chain = sk_X509_new_null();
    X509 *leaf = NULL, *cur, *x;
    cs_bundle *b;
    char subj[256], lsubj[256];
    int i, found;

    for (i = 0; i < sk_X509_num(certs); i++) {
        x = sk_X509_value(certs, i);
        if (leaf == NULL && cs_key_matches_cert(key, x))
            leaf = x;
    }
    /* room for every certificate: the pushes below cannot fail */
    if (!sk_X509_reserve(rest, sk_X509_num(certs)) || !sk_X509_reserve(chain, sk_X509_num(certs))) {
        sk_X509_free(rest);
        sk_X509_free(chain);
        return cs_error_set(CS_ENOMEM, "out of memory assembling the chain of %s", origin);
    }
    if (leaf == NULL) {
        sk_X509_free(rest);
        sk_X509_free(chain);
        return cs_error_set(CS_EBADCERT,
                            "%s: the private key does not match the certificate; check that "
                            "the key file belongs to this certificate",
                            origin);
    }
    for (i = 0; i < sk_X509_num(certs); i++) {
        x = sk_X509_value(certs, i);
        if (X509_cmp(x, leaf) != 0)
            sk_X509_push(rest, x);
    }
    cur = leaf;
    while (sk_X509_num(rest) > 0 && !self_signed(cur)) {
        found = 0;
        for (i = 0; i < sk_X509_num(rest); i++) {
            x = sk_X509_value(rest, i);
            if (issued_by(cur, x)) {
                sk_X509_delete(rest, i);
                /* the same issuer twice is harmless; drop the copy */
                if (sk_X509_find(chain, x) < 0)
                    sk_X509_push(chain, x);
                cur = x;
                found = 1;
                break;
            }
        }
        if (!found)
            break;
    }
    for (i = 0; i < sk_X509_num(rest); i++) {
        x = sk_X509_value(rest, i);
        if (X509_cmp(x, cur) == 0 || sk_X509_find(chain, x) >= 0)
            continue;
        subject_str(x, subj, sizeof(subj));
        subject_str(cur, lsubj, sizeof(lsubj));
        sk_X509_free(rest);
        sk_X509_free(chain);
        return cs_error_set(CS_EBADCERT,
                            "%s: the chain does not link: certificate '%s' did not sign '%s' "
                            "nor any certificate above it; supply the intermediates that "
                            "belong to this certificate",
                            origin, subj, lsubj);
    }
    sk_X509_free(rest);
    if (cs_bundle_new(leaf, chain, key, &b) != CS_OK) {
        sk_X509_free(chain);
        return cs_error_code();
    }
    sk_X509_free(chain);
    *out = b;
    return CS_OK;
}

cs_rc cs_bundle_new(X509 *leaf, STACK_OF(X509) * issuers, EVP_PKEY *key, cs_bundle **out)
{
    cs_bundle *b = calloc(1, sizeof(*b));
    int i;

    if (b == NULL)
        return cs_error_set(CS_ENOMEM, "out of memory");
    b->issuers = sk_X509_new_null();
    if (b->issuers == NULL) {
        free(b);
        return cs_error_set(CS_ENOMEM, "out of memory");
    }
    X509_up_ref(leaf);
    b->leaf = leaf;
    EVP_PKEY_up_ref(key);
    b->key = key;
    for (i = 0; issuers && i < sk_X509_num(issuers); i++) {
        X509_up_ref(sk_X509_value(issuers, i));
        if (sk_X509_push(b->issuers, sk_X509_value(issuers, i)) <= 0) {
            X509_free(sk_X509_value(issuers, i));
            cs_bundle_free(b);
            return cs_error_set(CS_ENOMEM, "out of memory");
        }
    }
    *out = b;
    return CS_OK;
}

void cs_bundle_free(cs_bundle *b)
{
    if (b == NULL)
        return;
    X509_free(b->leaf);
    sk_X509_pop_free(b->issuers, X509_free);
    EVP_PKEY_free(b->key);
    free(b);
}

cs_rc cs_bundle_load_pem(const char *certs, size_t certs_len, const char *key, size_t key_len,
                         const char *origin, cs_bundle **out)
{
    STACK_OF(X509) *all = sk_X509_new_null();
    EVP_PKEY *pkey = NULL;
    cs_rc rc;

    if (all == NULL)
        return cs_error_set(CS_ENOMEM, "out of memory reading %s", origin);
    rc = read_certs(certs, certs_len, all, origin);
    if (rc == CS_OK)
        rc = read_key(key, key_len, NULL, &pkey, origin);
    if (rc == CS_OK)
        rc = assemble(all, pkey, out, origin);
    EVP_PKEY_free(pkey);
    sk_X509_pop_free(all, X509_free);
    return rc;
}

cs_rc cs_bundle_load_files(const char *cert_path, const char *key_path, const char *chain_path,
                           const char *key_password_file, cs_bundle **out)
{
    STACK_OF(X509) *all = sk_X509_new_null();
    EVP_PKEY *pkey = NULL;
    char *data = NULL, *password = NULL, origin[4200];
    size_t len;
    cs_rc rc;

    if (all == NULL)
        return cs_error_set(CS_ENOMEM, "out of memory reading '%s'", cert_path);
    rc = cs_fs_read(cert_path, CS_MAX_PEM_FILE, &data, &len);
    if (rc == CS_OK) {
        snprintf(origin, sizeof(origin), "certificate file '%s'", cert_path);
        rc = read_certs(data, len, all, origin);
        free(data);
        data = NULL;
    }
    if (rc == CS_OK && chain_path) {
        rc = cs_fs_read(chain_path, CS_MAX_PEM_FILE, &data, &len);
        if (rc == CS_OK) {
            snprintf(origin, sizeof(origin), "chain file '%s'", chain_path);
            rc = read_certs(data, len, all, origin);
            free(data);
            data = NULL;
        }
    }
    if (rc == CS_OK && key_password_file)
        rc = cs_password_read(key_password_file, &password);
    if (rc == CS_OK) {
        rc = cs_fs_read(key_path, CS_MAX_PEM_FILE, &data, &len);
        if (rc == CS_OK) {
            snprintf(origin, sizeof(origin), "key file '%s'", key_path);
            rc = read_key(data, len, password, &pkey, origin);
            OPENSSL_cleanse(data, len);
            free(data);
        }
    }
    if (rc == CS_OK) {
        snprintf(origin, sizeof(origin), "'%s' with key '%s'", cert_path, key_path);
        rc = assemble(all, pkey, out, origin);
    }
    cs_password_free(password);
    EVP_PKEY_free(pkey);
    sk_X509_pop_free(all, X509_free);
    return rc;
}

static void time_str(const ASN1_TIME *t, char *buf, size_t size)
{
    struct tm tm;

    if (ASN1_TIME_to_tm(t, &tm) == 1)
        strftime(buf, size, "%Y-%m-%d %H:%M:%S UTC", &tm);
    else
        snprintf(buf, size, "(unreadable date)");
}

static cs_rc check_window(X509 *x, time_t now, const char *what, const char *origin)
{
    char subj[256], when[64];

    subject_str(x, subj, sizeof(subj));
    if (X509_cmp_time(X509_get0_notBefore(x), &now) > 0) {
        time_str(X509_get0_notBefore(x), when, sizeof(when));
        return cs_error_set(CS_EBADCERT,
                            "%s: the %s '%s' is not valid before %s; check the clock of this "
                            "machine or wait",
                            origin, what, subj, when);
    }
    if (X509_cmp_time(X509_get0_notAfter(x), &now) < 0) {
        time_str(X509_get0_notAfter(x), when, sizeof(when));
        return cs_error_set(CS_EBADCERT,
                            "%s: the %s '%s' expired on %s; renew it in the certificate "
                            "service first",
                            origin, what, subj, when);
    }
    return CS_OK;
}

static int san_has_literal(X509 *x, const char *name)
{
    GENERAL_NAMES *gens = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
    int i, found = 0;

    for (i = 0; gens && i < sk_GENERAL_NAME_num(gens) && !found; i++) {
        GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);

        if (g->type == GEN_DNS && (size_t)ASN1_STRING_length(g->d.dNSName) == strlen(name) &&
            strncasecmp((const char *)ASN1_STRING_get0_data(g->d.dNSName), name, strlen(name)) == 0)
            found = 1;
    }
    GENERAL_NAMES_free(gens);
    return found;
}

cs_rc cs_bundle_validate(const cs_bundle *b, const char *const *names, size_t n_names, time_t now,
                         const char *origin)
{
    X509 *child = b->leaf, *parent;
    char subj[256], psubj[256];
    size_t i;
    int k;

    if (!cs_key_matches_cert(b->key, b->leaf))
        return cs_error_set(CS_EBADCERT,
                            "%s: the private key does not match the certificate; check that "
                            "the key file belongs to this certificate",
                            origin);
    if (sk_X509_num(b->issuers) > CS_MAX_ISSUERS)
        return too_long((size_t)sk_X509_num(b->issuers), origin);
    for (k = 0; k < sk_X509_num(b->issuers); k++) {
        parent = sk_X509_value(b->issuers, k);
        if (!issued_by(child, parent)) {
            subject_str(child, subj, sizeof(subj));
            subject_str(parent, psubj, sizeof(psubj));
            return cs_error_set(CS_EBADCERT,
                                "%s: the chain does not link: '%s' is not signed by the next "
                                "certificate '%s'; supply the intermediates that belong to "
                                "this certificate",
                                origin, subj, psubj);
        }
        child = parent;
    }
    if (check_window(b->leaf, now, "certificate", origin) != CS_OK)
        return cs_error_code();
    for (k = 0; k < sk_X509_num(b->issuers); k++)
        if (check_window(sk_X509_value(b->issuers, k), now, "issuer certificate", origin) != CS_OK)
            return cs_error_code();
    for (i = 0; i < n_names; i++) {
        int ok;

        if (strncmp(names[i], "*.", 2) == 0)
            ok = san_has_literal(b->leaf, names[i]);
        else
            ok = X509_check_host(b->leaf, names[i], 0, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS,
                                 NULL) == 1;
        ERR_clear_error();
        if (!ok) {
            size_t n;
            char **have = cs_bundle_names(b, &n), list[1024] = "";

            for (size_t j = 0; have && j < n; j++) {
                if (j)
                    strncat(list, ", ", sizeof(list) - strlen(list) - 1);
                strncat(list, have[j], sizeof(list) - strlen(list) - 1);
            }
            cs_strv_free(have);
            return cs_error_set(CS_EBADCERT,
                                "%s: the certificate does not cover the name '%s' (it covers: "
                                "%s); fix the 'domain' list or get a certificate for it",
                                origin, names[i], list[0] ? list : "no DNS names");
        }
    }
    return CS_OK;
}

static X509_STORE *trust_store(const char *ca_file, const char *origin)
{
    X509_STORE *st = X509_STORE_new();
    int ok;

    if (st == NULL) {
        cs_error_set(CS_ENOMEM, "out of memory");
        return NULL;
    }
    ok = ca_file ? X509_STORE_load_file(st, ca_file) : X509_STORE_set_default_paths(st);
    if (!ok) {
        X509_STORE_free(st);
        if (ca_file)
            cs_error_set(CS_ECONFIG,
                         "%s: cannot read the trusted roots in trust-file '%s' (%s); give a "
                         "PEM file of CA certificates",
                         origin, ca_file, cs_error_openssl());
        else
            cs_error_set(CS_ECONFIG, "%s: cannot load the system's trusted roots (%s)", origin,
                         cs_error_openssl());
        return NULL;
    }
    return st;
}

cs_rc cs_bundle_verify_trust(const cs_bundle *b, const char *ca_file, const char *origin)
{
    X509_STORE *st = trust_store(ca_file, origin);
    X509_STORE_CTX *ctx;
    char subj[256];
    int ok, err, depth;

    if (st == NULL)
        return cs_error_code();
    ctx = X509_STORE_CTX_new();
    if (ctx == NULL || !X509_STORE_CTX_init(ctx, st, b->leaf, b->issuers)) {
        X509_STORE_CTX_free(ctx);
        X509_STORE_free(st);
        return cs_error_set(CS_ENOMEM, "out of memory");
    }
    X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_SSL_SERVER);
    /* dates are cs_bundle_validate's job, with a clearer message */
    X509_STORE_CTX_set_flags(ctx, X509_V_FLAG_NO_CHECK_TIME);
    ok = X509_verify_cert(ctx) == 1;
    err = X509_STORE_CTX_get_error(ctx);
    depth = X509_STORE_CTX_get_error_depth(ctx);
    subject_str(X509_STORE_CTX_get_current_cert(ctx) ? X509_STORE_CTX_get_current_cert(ctx)
                                                     : b->leaf,
                subj, sizeof(subj));
    X509_STORE_CTX_free(ctx);
    X509_STORE_free(st);
    ERR_clear_error();
    if (ok)
        return CS_OK;
    return cs_error_set(CS_EBADCERT,
                        "%s: the chain is not trusted: %s (at depth %d, '%s') "
                        "against %s%s; only certificates that chain to a trusted root are "
                        "installed (set the provider's trust-file to the roots you trust)",
                        origin, X509_verify_cert_error_string(err), depth, subj,
                        ca_file ? "trust-file " : "the system's trusted roots",
                        ca_file ? ca_file : "");
}

X509 *cs_bundle_leaf(const cs_bundle *b)
{
    return b->leaf;
}

STACK_OF(X509) * cs_bundle_issuers(const cs_bundle *b)
{
    return b->issuers;
}

EVP_PKEY *cs_bundle_key(const cs_bundle *b)
{
    return b->key;
}

void cs_bundle_fingerprint(const cs_bundle *b, char out[65])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0, i;

    out[0] = '\0';
    if (X509_digest(b->leaf, EVP_sha256(), md, &n) != 1)
        return;
    for (i = 0; i < n && i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
}

void cs_bundle_serial(const cs_bundle *b, char *out, size_t size)
{
    BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(b->leaf), NULL);
    char *hex = bn ? BN_bn2hex(bn) : NULL;

    snprintf(out, size, "%s", hex ? hex : "");
    OPENSSL_free(hex);
    BN_free(bn);
}

static time_t asn1_to_time(const ASN1_TIME *t)
{
    struct tm tm;

    if (ASN1_TIME_to_tm(t, &tm) != 1)
        return 0;
    return timegm(&tm);
}

time_t cs_bundle_not_before(const cs_bundle *b)
{
    return asn1_to_time(X509_get0_notBefore(b->leaf));
}

time_t cs_bundle_not_after(const cs_bundle *b)
{
    return asn1_to_time(X509_get0_notAfter(b->leaf));
}

char **cs_bundle_names(const cs_bundle *b, size_t *count)
{
    GENERAL_NAMES *gens = X509_get_ext_d2i(b->leaf, NID_subject_alt_name, NULL, NULL);
    char **v;
    size_t n = 0;
    int i;

    if (count)
        *count = 0;
    v = calloc((size_t)(gens ? sk_GENERAL_NAME_num(gens) : 0) + 2, sizeof(char *));
    for (i = 0; v && gens && i < sk_GENERAL_NAME_num(gens); i++) {
        GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);

        if (g->type == GEN_DNS &&
            (v[n++] = strndup((const char *)ASN1_STRING_get0_data(g->d.dNSName),
                              (size_t)ASN1_STRING_length(g->d.dNSName))) == NULL)
            break;
    }
    GENERAL_NAMES_free(gens);
    if (v && n == 0) {
        char cn[256];

        if (X509_NAME_get_text_by_NID(X509_get_subject_name(b->leaf), NID_commonName, cn,
                                      sizeof(cn)) > 0)
            v[n++] = strdup(cn);
    }
    /* a list with a name missing would be a wrong answer: none at all */
    if (v == NULL || (n > 0 && v[n - 1] == NULL)) {
        cs_strv_free(v);
        return NULL;
    }
    if (count)
        *count = n;
    return v;
}

static cs_rc bio_to_str(BIO *bio, char **pem, size_t *len)
{
    char *p;
    long n = BIO_get_mem_data(bio, &p);
    char *out = malloc((size_t)n + 1);

    if (out == NULL) {
        BIO_free(bio);
        return cs_error_set(CS_ENOMEM, "out of memory");
    }
    /* an empty BIO (a bundle without a chain) has no buffer at all */
    if (n > 0) {
        memcpy(out, p, (size_t)n);
        /* the buffer may have held a key */
        OPENSSL_cleanse(p, (size_t)n);
    }
    out[n] = '\0';
    *pem = out;
    if (len)
        *len = (size_t)n;
    BIO_free(bio);
    return CS_OK;
}

cs_rc cs_bundle_pem_leaf(const cs_bundle *b, char **pem, size_t *len)
{
    BIO *bio = BIO_new(BIO_s_mem());

    if (bio == NULL || !PEM_write_bio_X509(bio, b->leaf)) {
        BIO_free(bio);
        return cs_error_set(CS_ERR, "cannot encode the certificate: %s", cs_error_openssl());
    }
    return bio_to_str(bio, pem, len);
}

cs_rc cs_bundle_pem_issuers(const cs_bundle *b, char **pem, size_t *len)
{
    BIO *bio = BIO_new(BIO_s_mem());
    int i;

    for (i = 0; bio && i < sk_X509_num(b->issuers); i++)
        if (!PEM_write_bio_X509(bio, sk_X509_value(b->issuers, i))) {
            BIO_free(bio);
            bio = NULL;
        }
    if (bio == NULL)
        return cs_error_set(CS_ERR, "cannot encode the chain: %s", cs_error_openssl());
    return bio_to_str(bio, pem, len);
}

cs_rc cs_bundle_pem_key(const cs_bundle *b, char **pem, size_t *len)
{
    BIO *bio = BIO_new(BIO_s_mem());

    if (bio == NULL || !PEM_write_bio_PrivateKey(bio, b->key, NULL, NULL, 0, NULL, NULL)) {
        BIO_free(bio);
        return cs_error_set(CS_ERR, "cannot encode the private key: %s", cs_error_openssl());
    }
    return bio_to_str(bio, pem, len);
}
