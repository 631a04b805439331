/*
 * The option layer of the command-line tools: one table per command drives
 * getopt_long, the required-option check, the usage line and --help.
 */
#include <ctype.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_opt.h"

#define WIDTH 92       /* usage lines wrap before this column */
#define HELP_COLUMN 30 /* where an option's help text starts */
#define FIRST_VAL 256  /* getopt val of row 0; above every short option's char */

static size_t count(const cli_opt *opts)
{
    size_t n = 0;

    while (opts && opts[n].name)
        n++;
    return n;
}

static void print_prog(const cli_cmd *cmd, FILE *out)
{
    fprintf(out, "%s%s%s", cmd->prog, cmd->name ? " " : "", cmd->name ? cmd->name : "");
}

int cli_usage(const cli_cmd *cmd, const char *fmt, ...)
{
    va_list ap;

    print_prog(cmd, stderr);
    fputs(": ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs("\nTry '", stderr);
    print_prog(cmd, stderr);
    fputs(" --help'.\n", stderr);
    return CLI_EXIT_USAGE;
}

/* ---- help ---- */

/* One option as the usage line shows it: "--out PATH", "[--chain FILE]". */
static void synopsis_of(const cli_opt *o, char *buf, size_t size)
{
    int req = (o->flags & CLI_REQUIRED) != 0;

    snprintf(buf, size, "%s--%s%s%s%s", req ? "" : "[", o->name, o->value ? " " : "",
             o->value ? o->value : "", req ? "" : "]");
}

/* Print word on the usage line, wrapping under the first argument at WIDTH. */
static void usage_word(const char *word, int indent, int *col, FILE *out)
{
    if (*col + 1 + (int)strlen(word) > WIDTH) {
        fprintf(out, "\n%*s", indent, "");
        *col = indent;
    }
    *col += fprintf(out, " %s", word);
}

/* "Usage: certsync import NAME --cert FILE [--chain FILE] ..." (a program's COMMAND last) */
static void print_usage(const cli_cmd *cmd, FILE *out)
{
    const cli_opt *o;
    char word[160];
    int col, indent;

    col = fprintf(out, "Usage: ");
    col += fprintf(out, "%s%s%s", cmd->prog, cmd->name ? " " : "", cmd->name ? cmd->name : "");
    indent = col;
    if (cmd->args && !cmd->stop_at_arg)
        usage_word(cmd->args, indent, &col, out);
    for (o = cmd->opts; o && o->name; o++) {
        if (o->kind == CLI_HELP)
            continue;
        synopsis_of(o, word, sizeof(word));
        usage_word(word, indent, &col, out);
    }
    if (cmd->args && cmd->stop_at_arg)
        usage_word(cmd->args, indent, &col, out);
    fputc('\n', out);
}

/* The help of one option: its name at column 2, its text from HELP_COLUMN on. */
static void print_option(const cli_opt *o, FILE *out)
{
    const char *line = o->help ? o->help : "";
    char shortname[8] = "";
    int col;

    if (o->short_name)
        snprintf(shortname, sizeof(shortname), "-%c, ", o->short_name);
    col = fprintf(out, "  %s--%s%s%s", shortname, o->name, o->value ? " " : "",
                  o->value ? o->value : "");
    for (;;) {
        const char *nl = strchr(line, '\n');
        int len = nl ? (int)(nl - line) : (int)strlen(line);

        if (col > HELP_COLUMN - 2) {
            fputc('\n', out);
            col = 0;
        }
        fprintf(out, "%*s%.*s\n", HELP_COLUMN - col, "", len, line);
        if (!nl)
            break;
        line = nl + 1;
        col = 0;
    }
}

void cli_help(const cli_cmd *cmd, FILE *out)
{
    const cli_opt *o;

    print_usage(cmd, out);
    if (cmd->summary && cmd->summary[0])
        fprintf(out, "\n%c%s.\n", toupper((unsigned char)cmd->summary[0]), cmd->summary + 1);
    if (cmd->about)
        fprintf(out, "\n%s", cmd->about);
    if (count(cmd->opts) > 0)
        fputs("\nOptions:\n", out);
    for (o = cmd->opts; o && o->name; o++)
        print_option(o, out);
    if (cmd->more_help)
        cmd->more_help(out);
}

/* ---- parsing ---- */

/* The row of a getopt result: val FIRST_VAL + i for row i, or a short option's char. */
static const cli_opt *row_of(const cli_opt *opts, int val)
{
    size_t i, n = count(opts);

    if (val >= FIRST_VAL && (size_t)(val - FIRST_VAL) < n)
        return &opts[val - FIRST_VAL];
    for (i = 0; i < n && val > 0; i++)
        if (opts[i].short_name == val)
            return &opts[i];
    return NULL;
}

/* getopt_long's tables, built from the rows; freed by the caller. */
static struct option *getopt_table(const cli_cmd *cmd, char *shorts, size_t size)
{
    size_t i, n = count(cmd->opts), k;
    struct option *lo = calloc(n + 1, sizeof(*lo));

    k = (size_t)snprintf(shorts, size, "%s:", cmd->stop_at_arg ? "+" : "");
    for (i = 0; lo && i < n; i++) {
        const cli_opt *o = &cmd->opts[i];
        int has_arg = o->kind == CLI_VALUE || (o->kind == CLI_CALL && o->value);

        lo[i] = (struct option){o->name, has_arg ? required_argument : no_argument, NULL,
                                FIRST_VAL + (int)i};
        if (o->short_name && k + 3 < size) {
            shorts[k++] = o->short_name;
            if (has_arg)
                shorts[k++] = ':';
            shorts[k] = '\0';
        }
    }
    return lo;
}

/* How many rows a long option abbreviated as arg ("--co") could mean; *hit the first. */
static int abbreviates(const cli_opt *opts, const char *arg, size_t len, const cli_opt **hit)
{
    int hits = 0;

    for (; opts && opts->name; opts++)
        if (len > 2 && strncmp(opts->name, arg + 2, len - 2) == 0 && hits++ == 0)
            *hit = opts;
    return hits;
}

/*
 * Say what was wrong when getopt_long refused arg ('?') or found it without
 * its value (':'); optopt holds the row's val or the short option, 0 if unknown.
 */
static int refused(const cli_cmd *cmd, int result, const char *arg)
{
    const cli_opt *o = optopt ? row_of(cmd->opts, optopt) : NULL, *hit = NULL;
    size_t len = strcspn(arg, "=");

    if (result == ':' && o)
        return cli_usage(cmd, "--%s needs a value: --%s %s", o->name, o->name, o->value);
    if (o)
        return cli_usage(cmd, "--%s takes no value", o->name);
    if (optopt > 0 && optopt < FIRST_VAL)
        return cli_usage(cmd, "unknown option '-%c'", optopt);
    if (strncmp(arg, "--", 2) == 0 && abbreviates(cmd->opts, arg, len, &hit) > 1)
        return cli_usage(cmd, "'%.*s' is ambiguous (--%s, ...): give the whole option name",
                         (int)len, arg, hit->name);
    return cli_usage(cmd, "unknown option '%.*s'", (int)len, arg);
}

/* Store one option's argument; returns CLI_CONTINUE, or the exit code. */
static int take(const cli_cmd *cmd, const cli_opt *o, const char *arg, void *args)
{
    char *field = args ? (char *)args + o->offset : NULL;

    switch (o->kind) {
    case CLI_SWITCH:
        *(int *)field = 1;
        break;
    case CLI_VALUE:
        *(const char **)field = arg;
        break;
    case CLI_CALL:
        if (o->parse(arg, field) != CS_OK)
            return cli_usage(cmd, "%s", cs_error_last());
        break;
    case CLI_HELP:
        cli_help(cmd, stdout);
        return EXIT_SUCCESS;
    }
    return CLI_CONTINUE;
}

/* "--cert, --key and --out are required" when one of the required rows was not given. */
static int check_required(const cli_cmd *cmd, const unsigned char *seen)
{
    size_t i, n = count(cmd->opts), missing = 0, total = 0, k = 0, len = 0;
    char msg[512] = "";

    for (i = 0; i < n; i++)
        if (cmd->opts[i].flags & CLI_REQUIRED) {
            total++;
            missing += !seen[i];
        }
    if (missing == 0)
        return CLI_CONTINUE;
    for (i = 0; i < n && len < sizeof(msg); i++)
        if (cmd->opts[i].flags & CLI_REQUIRED)
            len += (size_t)snprintf(msg + len, sizeof(msg) - len, "%s--%s",
                                    k++ == 0     ? ""
                                    : k == total ? " and "
                                                 : ", ",
                                    cmd->opts[i].name);
    return cli_usage(cmd, "%s %s required", msg, total > 1 ? "are" : "is");
}

int cli_parse(const cli_cmd *cmd, int argc, char **argv, void *args, int *first)
{
    size_t n = count(cmd->opts);
    unsigned char *seen = calloc(n + 1, 1);
    char shorts[128];
    struct option *lo = getopt_table(cmd, shorts, sizeof(shorts));
    int val, rc = CLI_CONTINUE;

    if (seen == NULL || lo == NULL) {
        fputs("out of memory\n", stderr);
        rc = EXIT_FAILURE;
    }
    optind = 0; /* glibc: start afresh (another argv, another ordering) */
    opterr = 0;
    while (rc == CLI_CONTINUE && (val = getopt_long(argc, argv, shorts, lo, NULL)) != -1) {
        const cli_opt *o = row_of(cmd->opts, val);

        if (val == '?' || val == ':' || o == NULL) {
            rc = refused(cmd, val, argv[optind - 1]);
            break;
        }
        seen[o - cmd->opts] = 1;
        rc = take(cmd, o, optarg, args);
    }
    if (rc == CLI_CONTINUE && !cmd->args && optind < argc)
        rc = cli_usage(cmd, "unexpected argument '%s'", argv[optind]);
    if (rc == CLI_CONTINUE)
        rc = check_required(cmd, seen);
    *first = optind;
    free(seen);
    free(lo);
    return rc;
}
