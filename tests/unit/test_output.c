/* Writing a bundle out: the format table, the files each format writes, and safe file names. */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cs_fs.h"
#include "cs_output.h"
#include "cs_test.h"

static void ids_are_digits_and_names_are_plain_or_the_fallback_is_used(void **state)
{
    (void)state;

    assert_string_equal(cs_safe_file_name("9007199254741001", 1, "cert"), "9007199254741001");
    assert_string_equal(cs_safe_file_name("../../../PWN", 1, "cert"), "cert");
    assert_string_equal(cs_safe_file_name("12a", 1, "cert"), "cert");
    assert_string_equal(cs_safe_file_name("", 1, "shop"), "shop");
    assert_string_equal(cs_safe_file_name(NULL, 0, "shop"), "shop");
    assert_string_equal(cs_safe_file_name("_.shop.example.com", 0, "cert"), "_.shop.example.com");
    assert_string_equal(cs_safe_file_name("Shop-2_b", 0, "cert"), "Shop-2_b");
    assert_string_equal(cs_safe_file_name("../../../X", 0, "cert"), "cert");
    assert_string_equal(cs_safe_file_name("a..b", 0, "cert"), "cert");
    assert_string_equal(cs_safe_file_name(".hidden", 0, "cert"), "cert");
    assert_string_equal(cs_safe_file_name("a/b", 0, "cert"), "cert");
    assert_string_equal(cs_safe_file_name("a b", 0, "cert"), "cert");
    assert_string_equal(cs_safe_file_name("a\nb", 0, "cert"), "cert");
    assert_string_equal(cs_safe_file_name("é", 0, "cert"), "cert");
    assert_string_equal(
        cs_safe_file_name("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", 0,
                          "c"),
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"); /* 64 */
    assert_string_equal(
        cs_safe_file_name("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", 0,
                          "c"),
        "c"); /* 65 */
}

static void formats_parse_from_one_table_and_errors_list_it(void **state)
{
    unsigned bit;
    (void)state;

    assert_int_equal(cs_format_parse("pem", &bit), CS_OK);
    assert_int_equal(bit, CS_FMT_PEM);
    for (const char *const *w = (const char *const[]){"pfx", "pkcs12", "tomcat", "iis", NULL}; *w;
         w++) {
        assert_int_equal(cs_format_parse(*w, &bit), CS_OK);
        assert_int_equal(bit, CS_FMT_PFX);
    }
    assert_int_equal(cs_format_parse("apache", &bit), CS_OK);
    assert_int_equal(bit, CS_FMT_APACHE);
    /* a part of another word is not a word */
    assert_int_equal(cs_format_parse("tom", &bit), CS_EINVAL);
    assert_int_equal(cs_format_parse("zip", &bit), CS_EINVAL);
    assert_non_null(strstr(cs_error_last(), "unknown format 'zip'; known formats: pem, pfx (or "
                                            "pkcs12 tomcat iis), jks, nginx, apache"));
    assert_string_equal(cs_format_name(CS_FMT_JKS), "jks");
    assert_string_equal(cs_format_files(CS_FMT_APACHE), "NAME_public.crt NAME_chain.crt NAME.key");
    assert_null(cs_format_name(1u << 20));
}

static unsigned mode_of(const char *dir, const char *file)
{
    struct stat st;

    assert_int_equal(stat(cs_test_path(dir, file), &st), 0);
    return st.st_mode & 07777;
}

static void every_format_writes_its_files_with_keys_private(void **state)
{
    const char *names[] = {"shop.example.com"};
    char *dir = cs_test_tmpdir("output");
    cs_output_opts o = {"shop", NULL, CS_P12_MODERN, "pfx-pw", "jks-pw", NULL};
    const char *certs[] = {"fullchain.pem",   "cert.pem",       "chain.pem", "shop.pem",
                           "shop_public.crt", "shop_chain.crt", NULL};
    const char *secret[] = {"privkey.pem", "shop.key",         "shop.pfx", "pfx-password.txt",
                            "shop.jks",    "jks-password.txt", NULL};
    cs_test_chain c;
    char *data;
    (void)state;

    cs_test_chain_make(&c, CS_KEY_EC256, names, 1, -1, 90);
    assert_int_equal(
        cs_output_write(dir, c.bundle,
                        CS_FMT_PEM | CS_FMT_PFX | CS_FMT_JKS | CS_FMT_NGINX | CS_FMT_APACHE, &o),
        CS_OK);
    for (int i = 0; certs[i]; i++)
        assert_int_equal(mode_of(dir, certs[i]), 0644);
    for (int i = 0; secret[i]; i++)
        assert_int_equal(mode_of(dir, secret[i]), 0600);
    assert_int_equal(cs_fs_read(cs_test_path(dir, "pfx-password.txt"), 64, &data, NULL), CS_OK);
    assert_string_equal(data, "pfx-pw\n");
    free(data);
    /* only what is asked for is written */
    free(dir);
    dir = cs_test_tmpdir("output-pem");
    assert_int_equal(cs_output_write(dir, c.bundle, CS_FMT_NGINX, &o), CS_OK);
    assert_int_equal(access(cs_test_path(dir, "shop.pem"), F_OK), 0);
    assert_int_equal(access(cs_test_path(dir, "fullchain.pem"), F_OK), -1);
    assert_int_equal(access(cs_test_path(dir, "shop.pfx"), F_OK), -1);
    /* a name that is a path is refused */
    o.name = "../x";
    assert_int_equal(cs_output_write(dir, c.bundle, CS_FMT_NGINX, &o), CS_EINVAL);
    free(dir);
    cs_test_chain_free(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(ids_are_digits_and_names_are_plain_or_the_fallback_is_used),
        cmocka_unit_test(formats_parse_from_one_table_and_errors_list_it),
        cmocka_unit_test(every_format_writes_its_files_with_keys_private),
    };

    return cmocka_run_group_tests_name("output", tests, NULL, NULL);
}
