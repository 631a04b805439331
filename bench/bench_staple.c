/*
 * bench_staple: full TLS handshakes per second that ask for an OCSP staple
 * (status_request), against 127.0.0.1:PORT, for the stapling benchmarks of
 * bench/nginx-ocsp (wrk never asks for a staple, so it cannot measure the
 * status callback). A new connection and no session resumption each time.
 *
 *   bench_staple PORT SNI SECONDS THREADS
 *
 * Prints "HANDSHAKES_PER_S STAPLED FAILED": STAPLED counts handshakes that
 * got a staple, FAILED those that did not complete. Not a test.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

typedef struct {
    SSL_CTX *ctx;
    int port;
    const char *sni;
    double until;
    long done, stapled, failed;
} worker;

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int connect_to(int port)
{
    struct sockaddr_in a = {0};
    int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;

    a.sin_family = AF_INET;
    a.sin_port = htons((unsigned short)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* One full handshake asking for a staple: 1 stapled, 0 not, -1 failed. */
static int handshake(worker *w)
{
    const unsigned char *resp;
    int fd = connect_to(w->port), r = -1;
    SSL *ssl = fd >= 0 ? SSL_new(w->ctx) : NULL;

    if (ssl && SSL_set_fd(ssl, fd) == 1 && SSL_set_tlsext_host_name(ssl, w->sni) == 1 &&
        SSL_set_tlsext_status_type(ssl, TLSEXT_STATUSTYPE_ocsp) == 1 && SSL_connect(ssl) == 1)
        r = SSL_get_tlsext_status_ocsp_resp(ssl, &resp) > 0;
    if (ssl) {
        SSL_shutdown(ssl);
        SSL_free(ssl);
    }
    if (fd >= 0)
        close(fd);
    return r;
}

static void *run(void *arg)
{
    worker *w = arg;
    int r;

    while (now_s() < w->until) {
        r = handshake(w);
        w->done += r >= 0;
        w->stapled += r == 1;
        w->failed += r < 0;
    }
    return NULL;
}

int main(int argc, char **argv)
{
    int threads = argc == 5 ? atoi(argv[4]) : 0, i;
    double seconds = argc == 5 ? atof(argv[3]) : 0, t0;
    long done = 0, stapled = 0, failed = 0;
    worker *w;
    pthread_t *tid;
    SSL_CTX *ctx;

    if (threads < 1 || seconds <= 0) {
        fprintf(stderr, "usage: bench_staple PORT SNI SECONDS THREADS\n");
        return 2;
    }
    ctx = SSL_CTX_new(TLS_client_method());
    /* no resumption: every connection is a full handshake */
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
    w = calloc((size_t)threads, sizeof(*w));
    tid = calloc((size_t)threads, sizeof(*tid));
    t0 = now_s();
    for (i = 0; i < threads; i++) {
        w[i] = (worker){ctx, atoi(argv[1]), argv[2], t0 + seconds, 0, 0, 0};
        pthread_create(&tid[i], NULL, run, &w[i]);
    }
    for (i = 0; i < threads; i++) {
        pthread_join(tid[i], NULL);
        done += w[i].done;
        stapled += w[i].stapled;
        failed += w[i].failed;
    }
    printf("%.1f %ld %ld\n", (double)done / (now_s() - t0), stapled, failed);
    SSL_CTX_free(ctx);
    free(w);
    free(tid);
    return 0;
}
