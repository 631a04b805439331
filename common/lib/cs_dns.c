/* A TXT lookup over UDP, asked of the authoritative servers or of a named one. */
#include "cs_dns.h"

#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <resolv.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define DNS_MAX_SERVERS 4
#define DNS_TIMEOUT_MS 2000

int cs_dns_txt_query(const char *name, unsigned id, unsigned char *buf, size_t size)
{
    size_t n = 12, len;
    const char *p = name, *dot;

    if (size < 12 + strlen(name) + 6 || size < 18)
        return -1;
    memset(buf, 0, 12);
    buf[0] = (unsigned char)(id >> 8);
    buf[1] = (unsigned char)id;
    buf[2] = 0x01; /* RD: a recursive resolver answers too */
    buf[5] = 1;    /* one question */
    while (*p) {
        dot = strchr(p, '.');
        len = dot ? (size_t)(dot - p) : strlen(p);
        if (len == 0 || len > 63)
            return -1;
        buf[n++] = (unsigned char)len;
        memcpy(buf + n, p, len);
        n += len;
        p += len + (dot != NULL);
    }
    buf[n++] = 0;
    buf[n++] = 0;
    buf[n++] = ns_t_txt;
    buf[n++] = 0;
    buf[n++] = ns_c_in;
    return (int)n;
}

static unsigned get16(const unsigned char *p)
{
    return (unsigned)p[0] << 8 | p[1];
}

/* The character-strings of one TXT rdata, joined (RFC 7208 3.3), equal value. */
static int txt_is(const unsigned char *rd, size_t rdlen, const char *value)
{
    size_t i = 0, k = 0, vlen = strlen(value);

    while (i < rdlen) {
        size_t l = rd[i++];

        if (i + l > rdlen || k + l > vlen || memcmp(rd + i, value + k, l) != 0)
            return 0;
        i += l;
        k += l;
    }
    return k == vlen;
}

int cs_dns_answer_has(const unsigned char *msg, size_t len, unsigned id, const char *value)
{
    const unsigned char *p = msg + 12, *end = msg + len;
    unsigned qd, an, i;
    int skip;

    if (len < 12 || get16(msg) != id || !(msg[2] & 0x80))
        return -1;
    if ((msg[3] & 0x0f) != 0) /* NXDOMAIN and friends: nothing there (yet) */
        return 0;
    qd = get16(msg + 4);
    an = get16(msg + 6);
    for (i = 0; i < qd; i++) {
        if ((skip = dn_skipname(p, end)) < 0 || p + skip + 4 > end)
            return -1;
        p += skip + 4;
    }
    for (i = 0; i < an; i++) {
        unsigned type, rdlen;

        if ((skip = dn_skipname(p, end)) < 0 || p + skip + 10 > end)
            return -1;
        p += skip;
        type = get16(p);
        rdlen = get16(p + 8);
        p += 10;
        if (p + rdlen > end)
            return -1;
        if (type == ns_t_txt && txt_is(p, rdlen, value))
            return 1;
        p += rdlen;
    }
    return 0;
}

/* "IP", "IP:PORT" or "[IPv6]:PORT" into a socket address (port 53 by default). */
static cs_rc server_addr(const char *server, struct sockaddr_storage *ss, socklen_t *sl)
{
    char host[64];
    const char *colon = strrchr(server, ':'), *port = NULL;
    struct sockaddr_in *v4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)ss;

    memset(ss, 0, sizeof(*ss));
    if (server[0] == '[' && strchr(server, ']')) {
        snprintf(host, sizeof(host), "%.*s", (int)(strchr(server, ']') - server - 1), server + 1);
        port = strchr(server, ']')[1] == ':' ? strchr(server, ']') + 2 : NULL;
    } else if (colon && strchr(server, ':') == colon) {
        snprintf(host, sizeof(host), "%.*s", (int)(colon - server), server);
        port = colon + 1;
    } else {
        snprintf(host, sizeof(host), "%s", server);
    }
    if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons(port ? (unsigned short)atoi(port) : 53);
        *sl = sizeof(*v4);
    } else if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons(port ? (unsigned short)atoi(port) : 53);
        *sl = sizeof(*v6);
    } else {
        return cs_error_set(CS_EINVAL, "the DNS server '%s' is not IP, IP:PORT or [IPv6]:PORT",
                            server);
    }
    return CS_OK;
}

/* One exchange: the answer into buf; *got its length (0: no answer in time). */
static cs_rc exchange(const char *server, const unsigned char *q, int qlen, unsigned char *buf,
                      size_t size, size_t *got)
{
    struct sockaddr_storage ss;
    socklen_t sl = 0;
    struct pollfd pfd;
    ssize_t n;
    int fd;

    *got = 0;
    if (server_addr(server, &ss, &sl) != CS_OK)
        return cs_error_code();
    if ((fd = socket(ss.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0)) < 0)
        return cs_error_set(CS_EIO, "DNS: socket: %s", strerror(errno));
    if (connect(fd, (struct sockaddr *)&ss, sl) < 0 || send(fd, q, (size_t)qlen, 0) != qlen) {
        close(fd);
        return cs_error_set(CS_EIO, "DNS: cannot ask %s: %s", server, strerror(errno));
    }
    pfd.fd = fd;
    pfd.events = POLLIN;
    if (poll(&pfd, 1, DNS_TIMEOUT_MS) == 1 && (n = recv(fd, buf, size, 0)) > 0)
        *got = (size_t)n;
    close(fd);
    return CS_OK;
}

cs_rc cs_dns_txt_seen(const char *server, const char *name, const char *value, int *seen)
{
    unsigned char q[300], a[4096];
    unsigned short id;
    size_t got;
    int qlen;

    *seen = 0;
    if (getrandom(&id, sizeof(id), 0) != sizeof(id))
        id = (unsigned short)time(NULL);
    if ((qlen = cs_dns_txt_query(name, id, q, sizeof(q))) < 0)
        return cs_error_set(CS_EINVAL, "DNS: '%s' is not a name to ask for", name);
    if (exchange(server, q, qlen, a, sizeof(a), &got) != CS_OK)
        return cs_error_code();
    *seen = got ? cs_dns_answer_has(a, got, id, value) == 1 : 0;
    return CS_OK;
}

/* The IPv4 addresses of the NS records of an answer (at most DNS_MAX_SERVERS in all). */
static void ns_addresses(const unsigned char *a, size_t len, char servers[][64], size_t *n)
{
    const unsigned char *p = a + 12, *end = a + len;
    unsigned qd = get16(a + 4), an = get16(a + 6), i;
    char ns[NS_MAXDNAME];
    int skip;

    for (i = 0; i < qd; i++) {
        if ((skip = dn_skipname(p, end)) < 0 || p + skip + 4 > end)
            return;
        p += skip + 4;
    }
    for (i = 0; i < an && *n < DNS_MAX_SERVERS; i++) {
        struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_DGRAM}, *ai;
        unsigned type, rdlen;

        if ((skip = dn_skipname(p, end)) < 0 || p + skip + 10 > end)
            return;
        p += skip;
        type = get16(p);
        rdlen = get16(p + 8);
        p += 10;
        if (p + rdlen > end)
            return;
        if (type == ns_t_ns && dn_expand(a, end, p, ns, sizeof(ns)) > 0 &&
            getaddrinfo(ns, NULL, &hints, &ai) == 0) {
            inet_ntop(AF_INET, &((struct sockaddr_in *)ai->ai_addr)->sin_addr, servers[*n], 64);
            (*n)++;
            freeaddrinfo(ai);
        }
        p += rdlen;
    }
}

/* The name servers of name's zone: the NS records of its nearest parent that has them. */
static cs_rc authoritative(const char *name, char servers[][64], size_t *n)
{
    unsigned char a[4096];
    const char *z;
    int len;

    *n = 0;
    for (z = strchr(name, '.'); z && *n == 0; z = strchr(z + 1, '.'))
        if ((len = res_query(z + 1, ns_c_in, ns_t_ns, a, sizeof(a))) >= 12)
            ns_addresses(a, (size_t)len, servers, n);
    if (*n == 0)
        return cs_error_set(CS_ENOTFOUND,
                            "DNS: cannot find the name servers of the zone of %s through this "
                            "host's resolver; set dns-resolver to one of them",
                            name);
    return CS_OK;
}

static void pause_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

    nanosleep(&ts, NULL);
}

cs_rc cs_dns_wait_txt(const char *server, const char *name, const char *value, long wait_s)
{
    char servers[DNS_MAX_SERVERS][64];
    time_t end = time(NULL) + wait_s;
    size_t n = 1, i, seen;
    long ms = 250;

    if (server)
        snprintf(servers[0], sizeof(servers[0]), "%s", server);
    else if (authoritative(name, servers, &n) != CS_OK)
        return cs_error_code();
    for (;;) {
        for (i = 0, seen = 0; i < n; i++) {
            int s = 0;

            if (cs_dns_txt_seen(servers[i], name, value, &s) != CS_OK)
                return cs_error_code();
            seen += (size_t)s;
        }
        if (seen == n)
            return CS_OK;
        if (time(NULL) >= end)
            return cs_error_set(CS_EPROVIDER,
                                "DNS: the TXT record %s is not visible at %s%s after %ld seconds; "
                                "check that it was published, or raise dns-wait",
                                name, servers[0], n > 1 ? " and the zone's other servers" : "",
                                wait_s);
        pause_ms(ms);
        if (ms < 2000)
            ms *= 2;
    }
}
