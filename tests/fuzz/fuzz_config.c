/*
 * Fuzz target: the configuration parser (cs_config.c), certsync.conf as an
 * operator writes it.
 *
 * Input: the file's text, loaded through a memfd (/proc/self/fd/N). Beyond
 * not crashing, two promises of the README are checked: every configuration
 * error names the file and the line ("PATH:LINE: ..."), and a configuration
 * that loads holds only valid names with their providers resolved.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cs_config.h"
#include "fuzz_util.h"

static int fd = -1;

static void check_error(const char *path)
{
    const char *msg = cs_error_last();
    size_t n = strlen(path);
    const char *p = msg + n + 1;

    if (strncmp(msg, path, n) != 0 || msg[n] != ':' || *p < '0' || *p > '9')
        fuzz_fail("a configuration error does not start with '%s:LINE:': %s", path, msg);
}

static void check_loaded(const cs_config *c)
{
    size_t i, j;

    for (i = 0; i < c->n_certs; i++) {
        const cs_cert_conf *cc = &c->certs[i];

        if (!cs_name_valid(cc->name) || cs_config_cert(c, cc->name) != cc)
            fuzz_fail("[cert %s] is loaded but cannot be found by its name", cc->name);
        if ((cc->provider_name == NULL) != (cc->provider == NULL))
            fuzz_fail("[cert %s] provider '%s' is not resolved", cc->name,
                      cc->provider_name ? cc->provider_name : "(none)");
        for (j = 0; j < cc->n_domains; j++)
            if (cc->domains[j] == NULL || cc->domains[j][0] == '\0')
                fuzz_fail("[cert %s] domain %zu is empty", cc->name, j);
        if (cc->n_domains > 0 && cc->domains[cc->n_domains] != NULL)
            fuzz_fail("[cert %s] the domain list is not NULL-terminated", cc->name);
    }
    for (i = 0; i < c->n_providers; i++)
        if (!cs_name_valid(c->providers[i].name))
            fuzz_fail("[provider %s] is loaded with an invalid name", c->providers[i].name);
    if (c->store_path == NULL || c->store_path[0] != '/' || c->keep < 1 || c->keep > 1000)
        fuzz_fail("[store] is loaded with path '%s' keep %u", c->store_path ? c->store_path : "",
                  c->keep);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char path[64];
    cs_config *c = NULL;
    cs_rc rc;

    if (fd < 0)
        fd = fuzz_memfd("certsync.conf");
    fuzz_fd_set(fd, data, size);
    fuzz_fd_path(fd, path, sizeof(path));
    rc = cs_config_load(path, &c);
    fuzz_note("cs_config_load", rc);
    if (rc == CS_OK) {
        check_loaded(c);
        cs_config_free(c);
    } else if (rc == CS_ECONFIG) {
        check_error(path);
    }
    cs_error_clear();
    return 0;
}
