/*
 * Command-line options declared once, in one table per command: the parser
 * (getopt_long), the required-option check, the usage line and the --help
 * text all come from that table, as libgit2's CLI does it.
 *
 * A table row says where its value goes as an offset into the command's own
 * argument struct, so a table is static const and describes the command even
 * when it is not running (main's help lists every command from its table).
 */
#ifndef CS_CLI_OPT_H
#define CS_CLI_OPT_H

#include <stddef.h>
#include <stdio.h>

#include "cs_error.h"

#define CLI_EXIT_USAGE 2
#define CLI_CONTINUE (-1) /* cli_parse: the options are good, run the command */

typedef enum {
    CLI_SWITCH, /* an int at the offset, set to 1 */
    CLI_VALUE,  /* a const char * at the offset, the argument as given */
    CLI_CALL,   /* parse(argument, args + offset); a failure is a usage error; a row
                   without .value takes no argument: parse(NULL, ...) */
    CLI_HELP,   /* print the help and exit 0 */
} cli_kind;

#define CLI_REQUIRED 1u /* shown without [] in the usage line; missing: a usage error */

typedef struct {
    const char *name; /* the long name, without "--"; NULL ends a table */
    char short_name;  /* 0: none */
    cli_kind kind;
    const char *value; /* what the argument is called in the help: FILE, NAME, ... */
    const char *help;  /* lines separated by '\n' */
    size_t offset;
    unsigned flags;
    /* CLI_CALL: store the argument at field, or cs_error_set a usage message */
    cs_rc (*parse)(const char *arg, void *field);
} cli_opt;

#define CLI_OPT_SWITCH(T, f, name_, help_)                                                         \
    {                                                                                              \
        .name = name_, .kind = CLI_SWITCH, .help = help_, .offset = offsetof(T, f)                 \
    }
#define CLI_OPT_VALUE(T, f, name_, value_, help_)                                                  \
    {                                                                                              \
        .name = name_, .kind = CLI_VALUE, .value = value_, .help = help_, .offset = offsetof(T, f) \
    }
#define CLI_OPT_NEEDED(T, f, name_, value_, help_)                                                 \
    {                                                                                              \
        .name = name_, .kind = CLI_VALUE, .value = value_, .help = help_,                          \
        .offset = offsetof(T, f), .flags = CLI_REQUIRED                                            \
    }
#define CLI_OPT_CALL(T, f, name_, value_, help_, parse_)                                           \
    {                                                                                              \
        .name = name_, .kind = CLI_CALL, .value = value_, .help = help_, .offset = offsetof(T, f), \
        .parse = parse_                                                                            \
    }
#define CLI_OPT_HELP                                                                               \
    {                                                                                              \
        .name = "help", .kind = CLI_HELP, .help = "show this help and exit"                        \
    }
#define CLI_OPT_END                                                                                \
    {                                                                                              \
        .name = NULL                                                                               \
    }

typedef struct {
    const char *prog;    /* "certsync", "certsync-tomcat" */
    const char *name;    /* the command ("convert", "aliyun sign"), or NULL */
    const char *args;    /* positional arguments in the usage line ("NAME"); NULL: none allowed */
    const char *summary; /* one line, lower case, no final full stop */
    const char *about;   /* more paragraphs for --help, or NULL */
    const cli_opt *opts; /* ends with CLI_OPT_END */
    int stop_at_arg;     /* options end at the first argument (a program's COMMAND) */
    void (*more_help)(FILE *out); /* printed after the options (main's commands), or NULL */
} cli_cmd;

/*
 * Parse argv[1..] (argv[0] is the command) into args by the table of cmd.
 * Returns CLI_CONTINUE with *first the index of the first positional argument,
 * else the exit code: 0 after --help (printed to stdout), CLI_EXIT_USAGE after
 * a usage error (printed to stderr: what is wrong and "Try '... --help'").
 */
int cli_parse(const cli_cmd *cmd, int argc, char **argv, void *args, int *first);

/* The usage line(s), summary, about and options of cmd. */
void cli_help(const cli_cmd *cmd, FILE *out);

/* "PROG NAME: <message>\nTry 'PROG NAME --help'." on stderr; returns CLI_EXIT_USAGE. */
int cli_usage(const cli_cmd *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
