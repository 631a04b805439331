#include "cs_owner.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cs_fs.h"

/* A store made now, by root, for the user that will own it. */
static cs_rc make_store(const char *path, uid_t uid, gid_t gid)
{
    int fd;

    if (mkdir(path, 0750) < 0) {
        if (errno == EEXIST)
            return CS_OK;
        if (errno != ENOENT || cs_fs_mkdirs(path, 0750) != CS_OK)
            return cs_error_set(CS_EIO, "cannot create the store '%s': %s", path, strerror(errno));
    }
    if (cs_fs_dir_open(path, 0, &fd) != CS_OK)
        return cs_error_code();
    if (fchown(fd, uid, gid) < 0) {
        close(fd);
        return cs_error_set(CS_EIO, "cannot give the store '%s' to uid %ld: %s", path, (long)uid,
                            strerror(errno));
    }
    close(fd);
    return CS_OK;
}

cs_rc cs_owner_become(const cs_config *c)
{
    struct passwd pwd, *pw = NULL;
    struct group grp, *gr = NULL;
    char buf[16384], gbuf[16384];
    gid_t gid;

    if (c->owner == NULL || geteuid() != 0)
        return CS_OK;
    if (getpwnam_r(c->owner, &pwd, buf, sizeof(buf), &pw) != 0 || pw == NULL)
        return cs_error_set(CS_ECONFIG, "%s: [store] owner: no user '%s' on this machine", c->path,
                            c->owner);
    gid = pw->pw_gid;
    if (c->group) {
        if (getgrnam_r(c->group, &grp, gbuf, sizeof(gbuf), &gr) != 0 || gr == NULL)
            return cs_error_set(CS_ECONFIG, "%s: [store] group: no group '%s' on this machine",
                                c->path, c->group);
        gid = gr->gr_gid;
    }
    if (c->store_path == NULL || c->store_path[0] != '/')
        return cs_error_set(CS_ECONFIG, "%s: [store] path must be absolute", c->path);
    if (make_store(c->store_path, pw->pw_uid, gid) != CS_OK)
        return cs_error_code();
    /* groups first: once the uid is gone, setgroups is no longer allowed */
    if (initgroups(pw->pw_name, gid) < 0 || setresgid(gid, gid, gid) < 0 ||
        setresuid(pw->pw_uid, pw->pw_uid, pw->pw_uid) < 0)
        return cs_error_set(CS_ERR, "cannot become the store's user '%s': %s", c->owner,
                            strerror(errno));
    if (setuid(0) == 0)
        return cs_error_set(CS_ERR, "dropping to '%s' did not hold: refusing to go on", c->owner);
    return CS_OK;
}
