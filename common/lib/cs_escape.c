#include "cs_escape.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Length of the valid UTF-8 sequence at p (2-4), or 0. */
static size_t utf8_len(const unsigned char *p)
{
    size_t n, i;

    if (p[0] >= 0xc2 && p[0] <= 0xdf)
        n = 2;
    else if (p[0] >= 0xe0 && p[0] <= 0xef)
        n = 3;
    else if (p[0] >= 0xf0 && p[0] <= 0xf4)
        n = 4;
    else
        return 0;
    for (i = 1; i < n; i++)
        if ((p[i] & 0xc0) != 0x80)
            return 0;
    /* overlong 3- and 4-byte forms, surrogates, beyond U+10FFFF */
    if ((p[0] == 0xe0 && p[1] < 0xa0) || (p[0] == 0xed && p[1] >= 0xa0) ||
        (p[0] == 0xf0 && p[1] < 0x90) || (p[0] == 0xf4 && p[1] >= 0x90))
        return 0;
    return n;
}

const char *cs_escape(const char *s, char *buf, size_t size)
{
    const unsigned char *p = (const unsigned char *)(s ? s : "");
    size_t o = 0;

    if (size == 0)
        return buf;
    while (*p) {
        char piece[8];
        size_t n = 1, len;

        if (*p < 0x20 || *p == 0x7f) {
            snprintf(piece, sizeof(piece), "\\x%02x", *p);
        } else if (*p < 0x80) {
            piece[0] = (char)*p;
            piece[1] = '\0';
        } else if ((n = utf8_len(p)) == 0) {
            n = 1;
            snprintf(piece, sizeof(piece), "\\x%02x", *p);
        } else if (n == 2 && p[0] == 0xc2 && p[1] < 0xa0) {
            snprintf(piece, sizeof(piece), "\\u%04x", p[1]); /* C1: U+0080..U+009F */
        } else {
            memcpy(piece, p, n);
            piece[n] = '\0';
        }
        len = strlen(piece);
        if (o + len >= size)
            break;
        memcpy(buf + o, piece, len);
        o += len;
        p += n;
    }
    buf[o] = '\0';
    return buf;
}

char *cs_escape_dup(const char *s)
{
    size_t size = 6 * strlen(s ? s : "") + 1;
    char *buf = malloc(size);

    if (buf)
        cs_escape(s, buf, size);
    return buf;
}
