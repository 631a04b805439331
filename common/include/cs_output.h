/*
 * certsync: writing a bundle out in the formats servers read.
 *
 * The PEM set: fullchain.pem, cert.pem, chain.pem, privkey.pem (0600).
 * The console-style layouts, as the certificate service's download zips lay
 * them out:
 *   nginx   <name>.pem (leaf + chain), <name>.key
 *   apache  <name>_public.crt, <name>_chain.crt, <name>.key
 *   tomcat  <name>.pfx + pfx-password.txt  (iis: the same files)
 *   jks     <name>.jks + jks-password.txt
 * Keys and password files are 0600, certificates 0644.
 */
#ifndef CS_OUTPUT_H
#define CS_OUTPUT_H

#include "cs_bundle.h"
#include "cs_error.h"
#include "cs_pkcs12.h"

enum {
    CS_FMT_PEM = 1 << 0,    /* the PEM set */
    CS_FMT_PFX = 1 << 1,    /* <name>.pfx + pfx-password.txt */
    CS_FMT_JKS = 1 << 2,    /* <name>.jks + jks-password.txt */
    CS_FMT_NGINX = 1 << 3,  /* <name>.pem, <name>.key */
    CS_FMT_APACHE = 1 << 4, /* <name>_public.crt, <name>_chain.crt, <name>.key */
};

/*
 * The formats are one table (cs_output.c): its names parse here, and the
 * lists in errors and help texts come from it.
 * "pem", "pfx" (or "pkcs12", "tomcat", "iis"), "jks", "nginx", "apache".
 */
cs_rc cs_format_parse(const char *s, unsigned *bit);

/* "pem, pfx (or pkcs12 tomcat iis), jks, nginx, apache" (static). */
const char *cs_format_names(void);

/* The name of one CS_FMT_* bit, and the files it writes (NAME: the certificate's name); NULL for
 * none. */
const char *cs_format_name(unsigned bit);
const char *cs_format_files(unsigned bit);

typedef struct {
    const char *name;             /* base name of console-style files */
    const char *alias;            /* PKCS#12 friendly name and JKS alias */
    cs_p12_profile profile;       /* PKCS#12 profile */
    const char *pfx_password;     /* required with CS_FMT_PFX */
    const char *jks_password;     /* required with CS_FMT_JKS: store password */
    const char *jks_key_password; /* NULL: same as the store password */
} cs_output_opts;

/*
 * A file name taken from data (a service's certificate id, a certificate's
 * DNS name) must stay one file in the output directory. An id (id != 0) is
 * digits only; a name is [A-Za-z0-9._-], at most 64 characters, with no
 * leading dot and no "..". Returns s when it qualifies, else fallback (the
 * certificate's configured name, or a fixed one such as "cert").
 */
const char *cs_safe_file_name(const char *s, int id, const char *fallback);

/*
 * Write the formats into the existing directory dir (each file atomically).
 * o->name must be a plain file name (no '/', no leading dot).
 */
cs_rc cs_output_write(const char *dir, const cs_bundle *b, unsigned formats,
                      const cs_output_opts *o);

/* Single files for `certsync convert`. */
cs_rc cs_output_pfx_file(const char *path, const cs_bundle *b, const char *alias,
                         const char *password, cs_p12_profile profile);
cs_rc cs_output_jks_file(const char *path, const cs_bundle *b, const char *alias,
                         const char *store_password, const char *key_password);

#endif
