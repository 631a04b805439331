/*
 * certsync fuzzing: helpers shared by the libFuzzer targets in tests/fuzz.
 *
 * Targets whose code reads a path get the input through a memfd named
 * /proc/self/fd/N: no disk I/O, nothing left behind.
 */
#ifndef CS_FUZZ_UTIL_H
#define CS_FUZZ_UTIL_H

#include <stddef.h>
#include <stdint.h>

#define FUZZ_SEP "\n--8<--\n"

/* A memfd that lives for the whole run, and the path that opens it. */
int fuzz_memfd(const char *name);
const char *fuzz_fd_path(int fd, char *buf, size_t size);

/* Replace the content of fd with data; aborts on an I/O error (the harness is broken). */
void fuzz_fd_set(int fd, const void *data, size_t len);

/*
 * Split data at FUZZ_SEP into at most max NUL-terminated, malloc'd parts
 * (each part's length in lens); returns how many. fuzz_parts_free frees them.
 */
size_t fuzz_split(const uint8_t *data, size_t size, char **parts, size_t *lens, size_t max);
void fuzz_parts_free(char **parts, size_t n);

/* A private directory (0700) for the run, removed at exit. */
const char *fuzz_tmpdir(void);

/* With FUZZ_VERBOSE=1 in the environment, print what a call returned (to check the seeds). */
void fuzz_note(const char *what, int rc);

/* Abort with a message: a property of the code under test does not hold. */
void fuzz_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

#endif
