/*
 * certsync CLI: what the commands of the certificate service (cli_aliyun.c,
 * cli_deploy.c) share: the config, the store and the client of one
 * aliyun-cas provider, and how their --json output is written.
 */
#ifndef CS_CLI_SERVICE_H
#define CS_CLI_SERVICE_H

#include <jansson.h>
#include <time.h>

#include "cs_aliyun.h"
#include "cs_config.h"
#include "cs_store.h"
#include "cs_sync.h"

typedef struct {
    const char *cmd;
    cs_config *c;
    cs_store *s;
    cs_sync_session *sess;
    cs_aliyun *client;
    const cs_provider_conf *pv;
} cli_service;

/* --provider NAME, or the one aliyun-cas provider of the config; EXIT_* (said on stderr). */
int cli_service_open(cli_service *x, const char *cmd, const char *provider);
void cli_service_close(cli_service *x);

/*
 * --json as every service command prints it (README: "The service's commands print ..."):
 * ids as JSON strings (a double cannot hold every id the service hands out), fingerprints
 * lower-case hex, the service's millisecond times as UTC ISO-8601 ("" as null).
 */
void cli_json_normalize(json_t *j);

/* The service's milliseconds since the epoch (a number or a string of digits); 0 if none. */
time_t cli_ms_time(const json_t *v);

#endif
