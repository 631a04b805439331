/*
 * certsync: keystore passwords. They come from a file (first line) or are
 * generated; never from a command line, never logged.
 */
#ifndef CS_PASSWORD_H
#define CS_PASSWORD_H

#include "cs_error.h"

/* Read the first line of path (CR/LF stripped; must not be empty). */
cs_rc cs_password_read(const char *path, char **password);

/* A new random password of 32 letters and digits (190 bits). */
cs_rc cs_password_generate(char **password);

/* Write password plus a newline to path, mode 0600, atomically. */
cs_rc cs_password_write(const char *path, const char *password);

/* Wipe and free. */
void cs_password_free(char *password);

#endif
