/*
 * A validation request reaches the answer `certsync apply` wrote, under one host rule in
 * every server; nothing else is taken for one, and no request walks out of the store.
 */
#include <stdlib.h>
#include <string.h>

#include "cs_challenge.h"
#include "cs_store.h"
#include "cs_test.h"

static cs_challenge_verdict map(const char *host, const char *path, cs_challenge *c)
{
    memset(c, 0x5a, sizeof(*c));
    return cs_challenge_map(host, host ? strlen(host) : 0, path, path ? strlen(path) : 0, c);
}

static void file_validation_and_acme_tokens_map_to_their_store_files(void **state)
{
    cs_challenge c;
    (void)state;

    assert_int_equal(map("Shop.Example.COM", "/.well-known/pki-validation/fileauth.txt", &c),
                     CS_CHALLENGE_ANSWER);
    assert_string_equal(c.kind, "pki-validation");
    assert_string_equal(c.file, "fileauth.txt");
    assert_string_equal(c.host, "shop.example.com"); /* lower-cased, as the writer stores it */
    assert_int_equal(map("shop.example.com", "/.well-known/acme-challenge/tok_EN-1", &c),
                     CS_CHALLENGE_ANSWER);
    assert_string_equal(c.kind, "acme-challenge");
    assert_string_equal(c.file, "tok_EN-1");
}

static void other_paths_are_not_validation_requests(void **state)
{
    static const char *const paths[] = {
        "/",
        "/index.html",
        "/.well-known/",
        "/.well-known/pki-validation/other.txt",
        "/.well-known/pki-validation/fileauth.txt.bak",
        "/.well-known/acme-challeng/x",
        "/x/.well-known/acme-challenge/tok",
    };
    cs_challenge c;
    size_t i;
    (void)state;

    for (i = 0; i < sizeof(paths) / sizeof(paths[0]); i++)
        assert_int_equal(map("shop.example.com", paths[i], &c), CS_CHALLENGE_NOT_OURS);
    assert_int_equal(map("shop.example.com", NULL, &c), CS_CHALLENGE_NOT_OURS);
}

static void bad_tokens_and_hosts_are_refused_not_looked_up(void **state)
{
    static const char *const tokens[] = {
        "", "..", "a/b", "a%2fb", "%2e%2e", "tok.txt", "tok en", "tok\\x",
    };
    char path[600], host[300];
    cs_challenge c;
    size_t i;
    (void)state;

    for (i = 0; i < sizeof(tokens) / sizeof(tokens[0]); i++) {
        snprintf(path, sizeof(path), "/.well-known/acme-challenge/%s", tokens[i]);
        assert_int_equal(map("shop.example.com", path, &c), CS_CHALLENGE_REFUSED);
    }
    /* 255 characters of token, not 256 */
    memset(path, 'a', sizeof(path));
    memcpy(path, "/.well-known/acme-challenge/", 28);
    path[28 + 255] = '\0';
    assert_int_equal(map("shop.example.com", path, &c), CS_CHALLENGE_ANSWER);
    path[28 + 255] = 'a';
    path[28 + 256] = '\0';
    assert_int_equal(map("shop.example.com", path, &c), CS_CHALLENGE_REFUSED);

    assert_int_equal(map(NULL, CS_CHALLENGE_PKI_PATH, &c), CS_CHALLENGE_REFUSED);
    assert_int_equal(map("", CS_CHALLENGE_PKI_PATH, &c), CS_CHALLENGE_REFUSED);
    assert_int_equal(map("..", CS_CHALLENGE_PKI_PATH, &c), CS_CHALLENGE_REFUSED);
    assert_int_equal(map("a/../b", CS_CHALLENGE_PKI_PATH, &c), CS_CHALLENGE_REFUSED);
    assert_int_equal(map("shop.example.com:80", CS_CHALLENGE_PKI_PATH, &c), CS_CHALLENGE_REFUSED);
    assert_int_equal(map("-shop.example.com", CS_CHALLENGE_PKI_PATH, &c), CS_CHALLENGE_REFUSED);
    /* a NUL inside the given length is not cut short */
    assert_int_equal(
        cs_challenge_map("a\0b", 3, CS_CHALLENGE_PKI_PATH, strlen(CS_CHALLENGE_PKI_PATH), &c),
        CS_CHALLENGE_REFUSED);

    /* 253 characters (IDNA A-labels of 63) are a host; 254 are not */
    memset(host, 0, sizeof(host));
    snprintf(host, sizeof(host), "xn--%059d.%063d.%063d.%061d", 0, 0, 0, 0);
    assert_int_equal(strlen(host), 253);
    assert_int_equal(map(host, CS_CHALLENGE_PKI_PATH, &c), CS_CHALLENGE_ANSWER);
    assert_string_equal(c.host, host);
    strcat(host, "0");
    assert_int_equal(map(host, CS_CHALLENGE_PKI_PATH, &c), CS_CHALLENGE_REFUSED);
}

static void what_apply_writes_is_what_a_server_reads(void **state)
{
    char *root = cs_test_tmpdir("challenge"), *data = NULL, host[256];
    cs_challenge c;
    cs_store *s;
    size_t len = 0;
    (void)state;

    /* a 200-character host name: the writer and the servers agree on it, whatever the case */
    snprintf(host, sizeof(host), "%063d.%063d.%063d.SHOP-EXA", 0, 0, 0);
    assert_int_equal(strlen(host), 200);
    assert_int_equal(cs_store_open(root, NULL, &s), CS_OK);
    free(root);
    assert_int_equal(
        cs_store_write_challenge(s, host, "acme-challenge", "tok-200", "tok-200.thumb"), CS_OK);
    memcpy(host + 192, "shop-Exa", 8);
    assert_int_equal(map(host, "/.well-known/acme-challenge/tok-200", &c), CS_CHALLENGE_ANSWER);
    assert_int_equal(cs_store_read_challenge(s, c.host, c.kind, c.file, 4096, &data, &len), CS_OK);
    assert_memory_equal(data, "tok-200.thumb", len);
    free(data);
    /* a token with no file: the server answers 404 */
    assert_int_equal(map(host, "/.well-known/acme-challenge/other", &c), CS_CHALLENGE_ANSWER);
    assert_int_equal(cs_store_read_challenge(s, c.host, c.kind, c.file, 4096, &data, &len),
                     CS_ENOTFOUND);
    cs_store_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(file_validation_and_acme_tokens_map_to_their_store_files),
        cmocka_unit_test(other_paths_are_not_validation_requests),
        cmocka_unit_test(bad_tokens_and_hosts_are_refused_not_looked_up),
        cmocka_unit_test(what_apply_writes_is_what_a_server_reads),
    };

    return cmocka_run_group_tests_name("challenge", tests, NULL, NULL);
}
