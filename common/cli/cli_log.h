/*
 * How the certsync CLI speaks to cron and to the journal, in one place:
 * every line it prints goes through stdout or stderr, and these are set up
 * here once, before a command runs.
 *
 * - journald: when stdout or stderr is the journal (JOURNAL_STREAM holds its
 *   device:inode, systemd.exec(5)), each line written there starts with its
 *   syslog priority, as sd-daemon(3) describes: <3> an error, <4> a warning
 *   (a line with "warning:"), <6> information (every line on stdout).
 * - --quiet: stdout (ours and the on-change commands') goes to /dev/null, so
 *   only warnings and errors are printed: cron mails only when something is wrong.
 */
#ifndef CS_CLI_LOG_H
#define CS_CLI_LOG_H

#include "cs_error.h"

/* Wrap stdout and stderr where they are the journal; call first thing in main. */
void cli_log_init(void);

/* Print nothing but warnings and errors from now on. */
void cli_log_quiet(void);

/*
 * The command about to run: a --quiet given before it applies now, unless
 * the command's output is its answer (status, metrics, list, show, ...).
 */
void cli_log_command(const char *name);

/* The row of --quiet: a switch that calls cli_log_quiet (field unused). */
cs_rc cli_set_quiet(const char *unused, void *field);
#define CLI_OPT_QUIET                                                                              \
    {                                                                                              \
        .name = "quiet", .short_name = 'q', .kind = CLI_CALL,                                      \
        .help = "print only warnings and errors (for cron); under\n"                               \
                "systemd, lines carry their syslog priority (<3>, <4>, <6>)",                      \
        .parse = cli_set_quiet                                                                     \
    }

#endif
