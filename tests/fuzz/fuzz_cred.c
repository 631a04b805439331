/*
 * Fuzz target: the credential files (cs_aliyun_cred.c), which other tools
 * (the aliyun CLI, the SDKs) or the operator wrote.
 *
 * Input: one selector byte, then the file's content. The byte modulo 3 says
 * which file: 0 the aliyun CLI's ~/.aliyun/config.json, 1 the SDKs'
 * ~/.alibabacloud/credentials, 2 a `credentials = /path` file (mode 0600).
 * The corpus starts its files with '0', '1' or '2'. HOME is a private
 * directory; environment credentials are unset and the instance metadata
 * service is a closed local port, so nothing leaves the machine. Credentials
 * that resolve must have a non-empty id and secret.
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cs_aliyun_cred.h"
#include "fuzz_util.h"

#define METADATA "http://127.0.0.1:9"

static char cli_json[256], sdk_ini[256], own_file[256];

static void write_file(const char *path, const uint8_t *data, size_t size)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

    if (fd < 0 || (size > 0 && write(fd, data, size) != (ssize_t)size) || close(fd) < 0)
        fuzz_fail("writing %s: %m", path);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    static const char *const unset[] = {
        "ALIBABA_CLOUD_ACCESS_KEY_ID",    "ALIBABA_CLOUD_ACCESS_KEY_SECRET",
        "ALIBABA_CLOUD_SECURITY_TOKEN",   "ALIBABA_CLOUD_PROFILE",
        "ALIBABA_CLOUD_CREDENTIALS_FILE", "ALIBABA_CLOUD_CLI_PROFILE_DISABLED",
        "ALIBABA_CLOUD_ECS_METADATA",     NULL};
    char home[200], dir[256];
    size_t i;

    (void)argc;
    (void)argv;
    snprintf(home, sizeof(home), "%s/home", fuzz_tmpdir());
    for (i = 0; unset[i]; i++)
        unsetenv(unset[i]);
    setenv("HOME", home, 1);
    setenv("ALIBABA_CLOUD_ECS_METADATA_DISABLED", "true", 1);
    setenv("ALIBABA_CLOUD_IMDSV1_DISABLED", "true", 1);
    snprintf(dir, sizeof(dir), "%s/.aliyun", home);
    if (mkdir(home, 0700) < 0 || mkdir(dir, 0700) < 0)
        fuzz_fail("mkdir %s: %m", dir);
    snprintf(cli_json, sizeof(cli_json), "%s/config.json", dir);
    snprintf(dir, sizeof(dir), "%s/.alibabacloud", home);
    if (mkdir(dir, 0700) < 0)
        fuzz_fail("mkdir %s: %m", dir);
    snprintf(sdk_ini, sizeof(sdk_ini), "%s/credentials", dir);
    snprintf(own_file, sizeof(own_file), "%s/certsync-credentials", fuzz_tmpdir());
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cs_aliyun_cred cred;
    const char *setting = "default";
    int which;
    cs_rc rc;

    if (size == 0)
        return 0;
    which = data[0] % 3;
    unlink(cli_json);
    unlink(sdk_ini);
    if (which == 0) {
        write_file(cli_json, data + 1, size - 1);
    } else if (which == 1) {
        write_file(sdk_ini, data + 1, size - 1);
    } else {
        write_file(own_file, data + 1, size - 1);
        setting = own_file;
    }
    rc = cs_aliyun_cred_resolve(setting, METADATA, &cred);
    fuzz_note("cs_aliyun_cred_resolve", rc);
    if (rc == CS_OK) {
        if (cred.id == NULL || cred.id[0] == '\0' || cred.secret == NULL || cred.secret[0] == '\0')
            fuzz_fail("credentials from %s resolved with an empty access key id or secret",
                      cred.source);
        cs_aliyun_cred_clear(&cred);
    }
    cs_error_clear();
    return 0;
}
