/* certsync CLI: helpers shared by the command files. */
#ifndef CS_CLI_H
#define CS_CLI_H

#include "cli_opt.h"
#include "cs_config.h"
#include "cs_store.h"

#define EXIT_USAGE CLI_EXIT_USAGE

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

/* A command: its name, usage and option table, and what runs it. */
typedef struct cli_command cli_command;
struct cli_command {
    cli_cmd spec;
    int (*run)(const cli_command *self, int argc, char **argv);
    const void *data; /* the run function's own data for this row, or NULL */
};

/* One row of a command table: certsync NAME ARGS, what it does, its options. */
#define CLI_COMMAND(name_, args_, summary_, about_, opts_, run_)                                   \
    {                                                                                              \
        .spec = {.prog = "certsync",                                                               \
                 .name = name_,                                                                    \
                 .args = args_,                                                                    \
                 .summary = summary_,                                                              \
                 .about = about_,                                                                  \
                 .opts = opts_},                                                                   \
        .run = run_                                                                                \
    }
#define CLI_COMMAND_END                                                                            \
    {                                                                                              \
        .run = NULL                                                                                \
    }

/* --config FILE: the row of every command that reads certsync.conf. */
cs_rc cli_set_config(const char *arg, void *unused);
#define CLI_OPT_CONFIG                                                                             \
    {                                                                                              \
        .name = "config", .kind = CLI_CALL, .value = "FILE",                                       \
        .help = "certsync.conf (default: $CERTSYNC_CONFIG, else\n" CS_DEFAULT_CONFIG ")",          \
        .parse = cli_set_config                                                                    \
    }

/* The aliyun-cas lifecycle commands (cli_aliyun.c); the row with run NULL ends it. */
extern const cli_command cli_aliyun_commands[];
/* Deploying to cloud products through the service's deployment jobs (cli_deploy.c). */
extern const cli_command cli_deploy_commands[];

/* Rows that an ACME provider adds (cli_acme.c), found before the aliyun-cas rows. */
extern const cli_command cli_acme_commands[];

#endif
