/* certsync: ISO 8601 UTC, written and read in one place. */
#include <string.h>

#include "cs_escape.h"
#include "cs_time.h"

#define ISO_FORMAT "%Y-%m-%dT%H:%M:%SZ"

char *cs_time_iso(time_t t, char buf[CS_TIME_ISO_SIZE])
{
    struct tm tm;

    /* a year before 0 or past 9999 would not fit the form: say nothing rather than cut it */
    if (gmtime_r(&t, &tm) == NULL || tm.tm_year < -1900 || tm.tm_year > 9999 - 1900 ||
        strftime(buf, CS_TIME_ISO_SIZE, ISO_FORMAT, &tm) == 0)
        buf[0] = '\0';
    return buf;
}

cs_rc cs_time_parse_iso(const char *s, time_t *t)
{
    char again[CS_TIME_ISO_SIZE], shown[64];
    const char *end;
    struct tm tm;
    time_t v;

    *t = 0;
    memset(&tm, 0, sizeof(tm));
    /* strptime skips blanks and takes a 30th of February: the text must be what we write */
    if (s != NULL && strlen(s) == CS_TIME_ISO_SIZE - 1 &&
        (end = strptime(s, ISO_FORMAT, &tm)) != NULL && *end == '\0' &&
        strcmp(cs_time_iso(v = timegm(&tm), again), s) == 0) {
        *t = v;
        return CS_OK;
    }
    return cs_error_set(CS_EINVAL, "'%s' is not a UTC time of the form 2026-01-02T03:04:05Z",
                        cs_escape(s, shown, sizeof(shown)));
}
