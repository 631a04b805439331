/* Store files opened as an attacker would hope they are not: no symlink, no FIFO, no foreign file.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cs_fs.h"
#include "cs_test.h"

static int open_dir(const char *path)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY);

    assert_true(fd >= 0);
    return fd;
}

static void a_planted_symlink_is_never_followed(void **state)
{
    char *d = cs_test_tmpdir("fs-link"), *data;
    int dfd, fd;
    (void)state;

    cs_test_write_text(cs_test_path(d, "secret"), "root only\n");
    assert_int_equal(symlink(cs_test_path(d, "secret"), cs_test_path(d, "privkey.pem")), 0);
    assert_int_equal(mkdir(cs_test_path(d, "real"), 0750), 0);
    assert_int_equal(symlink(cs_test_path(d, "real"), cs_test_path(d, "v1")), 0);
    dfd = open_dir(d);
    assert_int_equal(cs_fs_read_at(dfd, "privkey.pem", 1024, (uid_t)-1, &data, NULL), CS_EPERM);
    assert_non_null(strstr(cs_error_last(), "symbolic link"));
    assert_int_equal(cs_fs_dir_openat(dfd, "v1", (uid_t)-1, &fd), CS_EPERM);
    assert_int_equal(cs_fs_set_mode_at(dfd, "privkey.pem", 0644, (gid_t)-1), CS_EPERM);
    close(dfd);
    free(d);
}

static void a_fifo_is_refused_at_once(void **state)
{
    char *d = cs_test_tmpdir("fs-fifo"), *data;
    int dfd;
    (void)state;

    assert_int_equal(mkfifo(cs_test_path(d, "fullchain.pem"), 0644), 0);
    dfd = open_dir(d);
    /* a blocking open(2) would wait here for a writer that never comes */
    assert_int_equal(cs_fs_read_at(dfd, "fullchain.pem", 1024, (uid_t)-1, &data, NULL), CS_EPERM);
    assert_non_null(strstr(cs_error_last(), "not a regular file"));
    assert_int_equal(cs_fs_read(cs_test_path(d, "fullchain.pem"), 1024, &data, NULL), CS_EIO);
    close(dfd);
    free(d);
}

static void a_file_of_another_user_or_a_writable_dir_is_refused(void **state)
{
    char *d = cs_test_tmpdir("fs-owner"), *data;
    int dfd, fd;
    (void)state;

    cs_test_write_text(cs_test_path(d, "meta.json"), "{}");
    assert_int_equal(mkdir(cs_test_path(d, "open"), 0777), 0);
    assert_int_equal(chmod(cs_test_path(d, "open"), 0777), 0);
    dfd = open_dir(d);
    assert_int_equal(cs_fs_read_at(dfd, "meta.json", 1024, getuid() + 1, &data, NULL), CS_EPERM);
    assert_non_null(strstr(cs_error_last(), "not to the store's user"));
    assert_int_equal(cs_fs_read_at(dfd, "meta.json", 1024, getuid(), &data, NULL), CS_OK);
    free(data);
    assert_int_equal(cs_fs_dir_openat(dfd, "open", (uid_t)-1, &fd), CS_EPERM);
    assert_non_null(strstr(cs_error_last(), "writable by its group or by others"));
    close(dfd);
    free(d);
}

static void tree_removal_deletes_links_not_their_targets(void **state)
{
    char *d = cs_test_tmpdir("fs-rm"), *keep = cs_test_tmpdir("fs-rm-keep");
    struct stat st;
    int dfd;
    (void)state;

    cs_test_write_text(cs_test_path(keep, "file"), "keep me");
    assert_int_equal(mkdir(cs_test_path(d, ".tmp-v2-1"), 0700), 0);
    assert_int_equal(symlink(keep, cs_test_path(d, ".tmp-v2-1/link")), 0);
    cs_test_write_text(cs_test_path(d, ".tmp-v2-1/a"), "x");
    assert_int_equal(symlink(keep, cs_test_path(d, ".tmp-v3-1")), 0);
    dfd = open_dir(d);
    assert_int_equal(cs_fs_remove_at(dfd, ".tmp-v2-1"), CS_OK);
    assert_int_equal(cs_fs_remove_at(dfd, ".tmp-v3-1"), CS_OK);
    assert_int_equal(cs_fs_remove_at(dfd, "absent"), CS_OK);
    close(dfd);
    assert_int_equal(lstat(cs_test_path(d, ".tmp-v2-1"), &st), -1);
    assert_int_equal(lstat(cs_test_path(d, ".tmp-v3-1"), &st), -1);
    assert_int_equal(stat(cs_test_path(keep, "file"), &st), 0);
    free(d);
    free(keep);
}

static void write_at_replaces_whole_with_the_mode_asked(void **state)
{
    char *d = cs_test_tmpdir("fs-write"), *data;
    struct stat st;
    int dfd;
    (void)state;

    dfd = open_dir(d);
    assert_int_equal(cs_fs_write_at(dfd, "state.json", "one", 3, 0640, (gid_t)-1, 0), CS_OK);
    assert_int_equal(cs_fs_write_at(dfd, "state.json", "two!", 4, 0600, (gid_t)-1, CS_FS_SYNC),
                     CS_OK);
    assert_int_equal(cs_fs_read_at(dfd, "state.json", 16, getuid(), &data, NULL), CS_OK);
    assert_string_equal(data, "two!");
    free(data);
    assert_int_equal(fstatat(dfd, "state.json", &st, AT_SYMLINK_NOFOLLOW), 0);
    assert_int_equal(st.st_mode & 07777, 0600);
    /* a link planted at the name is replaced, its target untouched */
    cs_test_write_text(cs_test_path(d, "target"), "target");
    unlinkat(dfd, "state.json", 0);
    assert_int_equal(symlinkat(cs_test_path(d, "target"), dfd, "state.json"), 0);
    assert_int_equal(cs_fs_write_at(dfd, "state.json", "new", 3, 0600, (gid_t)-1, 0), CS_OK);
    assert_int_equal(cs_fs_read(cs_test_path(d, "target"), 16, &data, NULL), CS_OK);
    assert_string_equal(data, "target");
    free(data);
    close(dfd);
    free(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_planted_symlink_is_never_followed),
        cmocka_unit_test(a_fifo_is_refused_at_once),
        cmocka_unit_test(a_file_of_another_user_or_a_writable_dir_is_refused),
        cmocka_unit_test(tree_removal_deletes_links_not_their_targets),
        cmocka_unit_test(write_at_replaces_whole_with_the_mode_asked),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
