/*
 * certsync CLI: what an ACME provider adds to the commands. `revoke --name NAME`
 * revokes NAME's current certificate at its ACME CA; `revoke ORDER` stays the
 * aliyun-cas command (cli_aliyun.c), to which this row hands over.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "cs_revoke.h"

typedef struct {
    const char *name, *provider;
    int reason, yes, json;
} revoke_args;

static cs_rc parse_reason(const char *arg, void *field)
{
    return cs_revoke_reason_parse(arg, field);
}

static const cli_opt revoke_opts[] = {
    CLI_OPT_VALUE(revoke_args, name, "name", "NAME",
                  "an ACME certificate: revoke the current version of\n"
                  "[cert NAME] at its CA, instead of an ORDER"),
    CLI_OPT_CALL(revoke_args, reason, "reason", "CODE",
                 "with --name: unspecified (0), keyCompromise (1),\n"
                 "affiliationChanged (3), superseded (4) or\n"
                 "cessationOfOperation (5); default: none sent",
                 parse_reason),
    CLI_OPT_VALUE(revoke_args, provider, "provider", "NAME",
                  "the [provider NAME] to use (default: the config's one\naliyun-cas provider)"),
    CLI_OPT_SWITCH(revoke_args, yes, "yes", "do not ask for confirmation"),
    CLI_OPT_SWITCH(revoke_args, json, "json", "print the service's answer as JSON (ORDER)"),
    CLI_OPT_CONFIG,
    CLI_OPT_HELP,
    CLI_OPT_END};

static const char revoke_about[] =
    "ORDER: the certificate of an issued aliyun-cas order\n"
    "(CancelCertificateForPackageRequest); a pending order is cancelled and its quota\n"
    "returned.\n"
    "--name NAME: the current version of an ACME certificate, revoked at its CA with a\n"
    "request signed by the account key (RFC 8555 7.6), with --reason when given. The next\n"
    "sync replaces a revoked current version.\n"
    "Asks for confirmation unless --yes. Versions in the store that hold the revoked\n"
    "certificate are marked revoked in their state.json: `certsync rollback` refuses them\n"
    "without --force.\n";

static const cli_command *aliyun_revoke(void)
{
    const cli_command *k;

    for (k = cli_aliyun_commands; k->run; k++)
        if (strcmp(k->spec.name, "revoke") == 0)
            return k;
    return NULL;
}

static int confirmed(const cli_cmd *spec, const char *name, int *rc)
{
    char answer[16] = "";

    if (!isatty(0)) {
        *rc = cli_usage(spec, "this cannot be undone; confirm with --yes");
        return 0;
    }
    printf("revoke the current certificate of %s? This cannot be undone. Type yes: ", name);
    fflush(stdout);
    if (fgets(answer, sizeof(answer), stdin) == NULL || strcmp(answer, "yes\n") != 0) {
        fprintf(stderr, "certsync revoke: not confirmed; nothing done\n");
        *rc = EXIT_FAILURE;
        return 0;
    }
    return 1;
}

static int revoke_name(const cli_cmd *spec, const revoke_args *a)
{
    cs_revoke_result res;
    cs_config *c;
    cs_store *s;
    int rc;

    if (!a->yes && !confirmed(spec, a->name, &rc))
        return rc;
    if ((rc = cli_open_all("revoke", &c, &s)) != EXIT_SUCCESS)
        return rc;
    if (cs_revoke_current(c, s, a->name, a->reason, &res) == CS_OK)
        printf("revoke: done (%s v%u, serial %s, at the ACME CA %s); `certsync rollback` refuses "
               "it and the next sync replaces it\n",
               a->name, res.version, res.serial, cli_safe(res.ca));
    else
        rc = cli_fail("revoke");
    cs_store_free(s);
    cs_config_free(c);
    return rc;
}

static int cmd_revoke(const cli_command *self, int argc, char **argv)
{
    const cli_command *order = aliyun_revoke();
    revoke_args a = {.reason = CS_REVOKE_NO_REASON};
    int first, rc = cli_parse(&self->spec, argc, argv, &a, &first);

    if (rc != CLI_CONTINUE)
        return rc;
    if (a.name == NULL) {
        if (a.reason != CS_REVOKE_NO_REASON)
            return cli_usage(&self->spec, "--reason goes with --name (an ACME certificate)");
        return order ? order->run(order, argc, argv) : cli_usage(&self->spec, "give --name NAME");
    }
    if (first != argc)
        return cli_usage(&self->spec, "give --name NAME or an ORDER, not both");
    if (a.provider || a.json)
        return cli_usage(&self->spec, "--provider and --json go with an ORDER, not --name");
    return revoke_name(&self->spec, &a);
}

const cli_command cli_acme_commands[] = {CLI_COMMAND("revoke", "[ORDER]",
                                                     "revoke an issued certificate", revoke_about,
                                                     revoke_opts, cmd_revoke),
                                         CLI_COMMAND_END};
