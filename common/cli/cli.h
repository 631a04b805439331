/* certsync CLI: helpers shared by the command files. */
#ifndef CS_CLI_H
#define CS_CLI_H

#include "cs_config.h"
#include "cs_store.h"

#define EXIT_USAGE 2

extern const char *cli_config_path;

int cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int cli_fail(const char *cmd);
const char *cli_config_file(void);
int cli_open_all(const char *cmd, cs_config **c, cs_store **s);

/*
 * s (text from the service, a certificate or an error quoting them) with its
 * control characters escaped, for printing; valid until 16 more calls.
 */
const char *cli_safe(const char *s);

/* The aliyun-cas lifecycle commands (cli_aliyun.c). */
int cmd_list(int argc, char **argv);
int cmd_show(int argc, char **argv);
int cmd_fetch(int argc, char **argv);
int cmd_upload(int argc, char **argv);
int cmd_delete(int argc, char **argv);
int cmd_apply(int argc, char **argv);
int cmd_withdraw(int argc, char **argv);
int cmd_revoke(int argc, char **argv);
int cmd_renew(int argc, char **argv);
int cmd_quota(int argc, char **argv);
int cmd_delete_order(int argc, char **argv);
int cmd_aliyun(int argc, char **argv);

#endif
