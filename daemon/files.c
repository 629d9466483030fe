/* SPDX-License-Identifier: MIT */
/*
 * files — see files.h.
 *
 * The plan for every path: canonical text (files_canonical), the allowed directory it lies
 * in (the longest that matches), that directory opened as configured (an operator's choice,
 * symbolic links and all), then the rest of the directories opened beneath it without
 * following any link, and the last component handled with *at() calls on that directory
 * (a single name: nothing left to resolve but the name itself, and O_NOFOLLOW for it).
 */
#include "files.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "util/cleanup.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/macro.h"

#define PARTIAL_SUFFIX_LEN 6
/* How deep the start-up clean-up looks below an allowed directory, and how many entries it
 * reads at most: saves land where an operator chose, rarely deep, and a directory of a
 * million files must not hold the start-up up. */
#define STALE_MAX_DEPTH 4
#define STALE_MAX_ENTRIES 100000
/* openat2(RESOLVE_BENEATH) answers EAGAIN when a rename raced the lookup: try again. */
#define OPENAT2_TRIES 8

/* ---- pure helpers ---- */

int
files_canonical(const char *path, char *out, size_t size)
{
    const char *p = path;
    size_t len = 0;

    if (!path || path[0] != '/') {
        return -EINVAL;
    }
    if (size < 2) {
        return -ENAMETOOLONG;
    }
    while (*p) {
        const char *start;
        size_t n;

        while (*p == '/') {
            p++;
        }
        start = p;
        while (*p && *p != '/') {
            p++;
        }
        n = (size_t) (p - start);
        if (n == 0 || (n == 1 && start[0] == '.')) {
            continue;
        }
        if (n == 2 && start[0] == '.' && start[1] == '.') {
            while (len > 0 && out[len - 1] != '/') {
                len--; /* the last component ... */
            }
            len -= len > 0; /* ... and its slash; ".." of the root is the root */
            continue;
        }
        if (len + 1 + n + 1 > size) {
            return -ENAMETOOLONG;
        }
        out[len++] = '/';
        memcpy(out + len, start, n);
        len += n;
    }
    if (len == 0) {
        out[len++] = '/';
    }
    out[len] = '\0';
    return 0;
}

bool
files_is_partial_name(const char *name)
{
    size_t len = strlen(name), mark = strlen(FILES_PARTIAL_MARK);

    /* "." + at least one byte of NAME + the mark + the suffix */
    if (name[0] != '.' || len < 2 + mark + PARTIAL_SUFFIX_LEN ||
        memcmp(name + len - PARTIAL_SUFFIX_LEN - mark, FILES_PARTIAL_MARK, mark) != 0) {
        return false;
    }
    for (size_t i = len - PARTIAL_SUFFIX_LEN; i < len; i++) {
        if (!isalnum((unsigned char) name[i])) {
            return false;
        }
    }
    return true;
}

/* ---- the policy ---- */

int
files_policy_allow(FilePolicy *p, const char *dir, char *err, size_t err_size)
{
    char canon[FILES_PATH_MAX];
    int r = files_canonical(dir, canon, sizeof(canon));

    if (r < 0) {
        (void) snprintf(err, err_size, "'%s' is not an absolute directory path", dir);
        return r;
    }
    for (size_t i = 0; i < p->n_dirs; i++) {
        if (strcmp(p->dirs[i], canon) == 0) {
            return 0;
        }
    }
    if (p->n_dirs == FILES_MAX_DIRS) {
        (void) snprintf(err, err_size, "at most %d directories may be allowed", FILES_MAX_DIRS);
        return -E2BIG;
    }
    p->dirs[p->n_dirs] = strdup(canon);
    if (!p->dirs[p->n_dirs]) {
        return -ENOMEM;
    }
    p->n_dirs++;
    return 0;
}

void
files_policy_clear(FilePolicy *p)
{
    for (size_t i = 0; i < p->n_dirs; i++) {
        free(p->dirs[i]);
        p->dirs[i] = NULL;
    }
    p->n_dirs = 0;
}

void
files_policy_describe(const FilePolicy *p, char *buf, size_t size)
{
    size_t used = 0;

    buf[0] = '\0';
    for (size_t i = 0; i < p->n_dirs && used < size; i++) {
        int n = snprintf(buf + used, size - used, "%s'%s'", i ? ", " : "", p->dirs[i]);
        used += n > 0 ? (size_t) n : 0;
    }
    if (p->n_dirs == 0) {
        (void) snprintf(buf, size, "none");
    }
}

/* The allowed directory @path (canonical) lies in, the longest; *ret_rest is what follows
 * it (never empty). */
static const char *
policy_match(const FilePolicy *p, const char *path, const char **ret_rest)
{
    const char *best = NULL;
    size_t best_len = 0;

    for (size_t i = 0; i < p->n_dirs; i++) {
        const char *d = p->dirs[i];
        size_t n = strcmp(d, "/") == 0 ? 0 : strlen(d);

        if (strncmp(path, d, n) == 0 && path[n] == '/' && path[n + 1] != '\0' &&
            (!best || n >= best_len)) {
            best = d;
            best_len = n;
        }
    }
    if (best) {
        *ret_rest = path + best_len + 1;
    }
    return best;
}

/* ---- opening directories beneath an allowed one ---- */

static bool
is_symlink_at(int dfd, const char *name)
{
    struct stat st;

    return fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode);
}

/* Where the kernel has no openat2: one component at a time, none of them a link. */
static int
open_dir_walk(int dfd, const char *rel, int *ret)
{
    _cleanup_free_ char *copy = strdup(rel);
    _cleanup_close_ int cur = -EBADF;
    char *save = NULL;

    if (!copy) {
        return -ENOMEM;
    }
    cur = fcntl(dfd, F_DUPFD_CLOEXEC, 3);
    if (cur < 0) {
        return -errno;
    }
    for (char *c = strtok_r(copy, "/", &save); c; c = strtok_r(NULL, "/", &save)) {
        int next;

        if (strcmp(c, ".") == 0 || strcmp(c, "..") == 0) {
            return -EXDEV; /* canonical paths have none: whatever made this one, refuse it */
        }
        /* A link fails O_DIRECTORY | O_NOFOLLOW with ENOTDIR: tell the two apart. */
        next = openat(cur, c, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (next < 0) {
            return errno == ENOTDIR && is_symlink_at(cur, c) ? -ELOOP : -errno;
        }
        (void) close(cur);
        cur = next;
    }
    *ret = TAKE_FD(cur);
    return 0;
}

static int
open_dir_beneath(const FilePolicy *p, int dfd, const char *rel, int *ret)
{
    struct open_how how = {.flags = O_RDONLY | O_DIRECTORY | O_CLOEXEC,
                           .resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS |
                                      RESOLVE_NO_MAGICLINKS};

    for (int i = 0; !p->no_openat2 && i < OPENAT2_TRIES; i++) {
        long fd = syscall(SYS_openat2, dfd, rel, &how, sizeof(how));

        if (fd >= 0) {
            *ret = (int) fd;
            return 0;
        }
        if (errno == ENOSYS) {
            break; /* before Linux 5.6, or filtered out: walk instead */
        }
        if (errno != EAGAIN) {
            return -errno;
        }
    }
    return open_dir_walk(dfd, rel, ret);
}

static int
locate_failed(const char *path, const char *allowed, int r, char *err, size_t err_size)
{
    if (r == -ELOOP) {
        (void) snprintf(err, err_size, "'%s' goes through a symbolic link below '%s'; "
                        "vfio-migd follows none there: name the real path", path, allowed);
    } else if (r == -ENOENT) {
        (void) snprintf(err, err_size, "the directory of '%s' does not exist on the daemon's "
                        "host", path);
    } else if (r == -ENOTDIR) {
        (void) snprintf(err, err_size, "a part of '%s' is not a directory", path);
    } else {
        (void) snprintf(err, err_size, "cannot open the directory of '%s': %s", path,
                        strerror(-r));
    }
    return r;
}

int
files_locate(const FilePolicy *p, const char *path, FileSpot *ret, char *err, size_t err_size)
{
    _cleanup_close_ int top = -EBADF, dir = -EBADF;
    char where[1024], sub[FILES_PATH_MAX];
    const char *allowed, *rest = NULL, *slash, *name;
    int r;

    r = files_canonical(path, ret->path, sizeof(ret->path));
    if (r < 0) {
        (void) snprintf(err, err_size, "'%.256s' is %s", path,
                        r == -EINVAL ? "not an absolute path" : "too long a path");
        return r;
    }
    allowed = policy_match(p, ret->path, &rest);
    if (!allowed) {
        files_policy_describe(p, where, sizeof(where));
        (void) snprintf(err, err_size, "'%s' is outside the directories where vfio-migd reads "
                        "and writes files (%s): use a path in one of them, or allow its "
                        "directory ([files] allowed_dirs in vfio-migd.conf, or vfio-migd "
                        "--allowed-dirs DIRS)", ret->path, where);
        return -EPERM;
    }
    slash = strrchr(rest, '/');
    name = slash ? slash + 1 : rest;
    if (strlen(name) > FILES_NAME_MAX) {
        (void) snprintf(err, err_size, "the file name in '%s' is longer than %d bytes", ret->path,
                        FILES_NAME_MAX);
        return -ENAMETOOLONG;
    }
    top = open(allowed, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (top < 0) {
        r = -errno;
        (void) snprintf(err, err_size, "cannot open the allowed directory '%s': %s%s%s%s",
                        allowed, strerror(-r), r == -ENOENT ? " (create it: mkdir -p '" : "",
                        r == -ENOENT ? allowed : "", r == -ENOENT ? "')" : "");
        return r;
    }
    if (slash) {
        memcpy(sub, rest, (size_t) (slash - rest));
        sub[slash - rest] = '\0';
        r = open_dir_beneath(p, top, sub, &dir);
        if (r < 0) {
            return locate_failed(ret->path, allowed, r, err, err_size);
        }
    } else {
        dir = TAKE_FD(top);
    }
    (void) snprintf(ret->name, sizeof(ret->name), "%s", name);
    ret->dirfd = TAKE_FD(dir);
    return 0;
}

void
files_spot_done(FileSpot *s)
{
    if (s->dirfd >= 0) {
        (void) close(TAKE_FD(s->dirfd));
    }
}

/* ---- reading ---- */

/* What a restore may read: a regular file, named itself (no link). */
static int
check_readable(const struct stat *st, const char *path, char *err, size_t err_size)
{
    if (S_ISLNK(st->st_mode)) {
        (void) snprintf(err, err_size, "cannot restore from '%s': it is a symbolic link, and "
                        "vfio-migd follows none: name the file itself", path);
        return -ELOOP;
    }
    if (!S_ISREG(st->st_mode)) {
        (void) snprintf(err, err_size, "cannot restore from '%s': not a regular file; name a "
                        "file written by save", path);
        return -EINVAL;
    }
    return 0;
}

int
files_open_read(const FilePolicy *p, const char *path, int *ret_fd, char *err, size_t err_size)
{
    _cleanup_(files_spot_done) FileSpot spot = FILE_SPOT_INIT;
    _cleanup_close_ int fd = -EBADF;
    struct stat st;
    int r, flags;

    r = files_locate(p, path, &spot, err, err_size);
    if (r < 0) {
        return r;
    }
    /* Looked at first, so that a device node or a FIFO is not even opened... */
    r = fstatat(spot.dirfd, spot.name, &st, AT_SYMLINK_NOFOLLOW) < 0 ? -errno : 0;
    r = r < 0 ? r : check_readable(&st, spot.path, err, err_size);
    if (r >= 0) {
        /* ... and the one open checked again: something may have been swapped in meanwhile.
         * O_NONBLOCK: a FIFO swapped in must not block the open. */
        fd = openat(spot.dirfd, spot.name,
                    O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
        r = fd < 0 || fstat(fd, &st) < 0 ? -errno : check_readable(&st, spot.path, err, err_size);
    }
    if (r < 0) {
        if (r != -ELOOP && r != -EINVAL) {
            (void) snprintf(err, err_size, "cannot restore from '%s': %s", spot.path,
                            strerror(-r));
        }
        return r;
    }
    flags = fcntl(fd, F_GETFL);
    if (flags < 0 || fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) < 0) {
        r = -errno;
        (void) snprintf(err, err_size, "cannot read '%s': %s", spot.path, strerror(-r));
        return r;
    }
    *ret_fd = TAKE_FD(fd);
    return 0;
}

/* ---- saving ---- */

/* What a save may replace: nothing, or with @overwrite a regular file. */
static int
check_replaceable(const struct stat *st, const char *path, bool overwrite, char *err,
                  size_t err_size)
{
    if (S_ISDIR(st->st_mode)) {
        (void) snprintf(err, err_size, "'%s' is a directory; name a file to save to", path);
        return -EISDIR;
    }
    if (!overwrite) {
        (void) snprintf(err, err_size, "'%s' already exists; allow overwriting to replace it "
                        "(vfio-migctl save --force)", path);
        return -EEXIST;
    }
    if (S_ISLNK(st->st_mode)) {
        (void) snprintf(err, err_size, "'%s' is a symbolic link; vfio-migd writes neither "
                        "through nor over links: remove it first (rm '%s')", path, path);
        return -ELOOP;
    }
    if (!S_ISREG(st->st_mode)) {
        (void) snprintf(err, err_size, "'%s' is not a regular file; vfio-migd replaces only "
                        "regular files: remove it first, or save to another path", path);
        return -EINVAL;
    }
    return 0;
}

/* What is at @name now, if anything, may be replaced. */
static int
check_target(const FileSpot *s, bool overwrite, char *err, size_t err_size)
{
    struct stat st;

    if (fstatat(s->dirfd, s->name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
        return check_replaceable(&st, s->path, overwrite, err, err_size);
    }
    if (errno != ENOENT) {
        int r = -errno;
        (void) snprintf(err, err_size, "cannot save to '%s': %s", s->path, strerror(-r));
        return r;
    }
    return 0;
}

static void
random_suffix(char out[PARTIAL_SUFFIX_LEN + 1])
{
    static const char alphabet[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    uint8_t bytes[PARTIAL_SUFFIX_LEN] = {0};

    /* Unpredictable names keep others from guessing the partial file; O_EXCL keeps it ours
     * whatever the name, so should getrandom() fail the clock still gives a fresh one. */
    if (getrandom(bytes, sizeof(bytes), GRND_NONBLOCK) != (ssize_t) sizeof(bytes)) {
        uint64_t now = clock_now_ns();

        memcpy(bytes, &now, MIN(sizeof(now), sizeof(bytes)));
    }
    for (size_t i = 0; i < PARTIAL_SUFFIX_LEN; i++) {
        out[i] = alphabet[bytes[i] % (sizeof(alphabet) - 1)];
    }
    out[PARTIAL_SUFFIX_LEN] = '\0';
}

int
files_create(const FilePolicy *p, const char *path, bool overwrite, FileNew *f, char *err,
             size_t err_size)
{
    size_t room = FILES_NAME_MAX - 1 - strlen(FILES_PARTIAL_MARK) - PARTIAL_SUFFIX_LEN;
    char suffix[PARTIAL_SUFFIX_LEN + 1];
    struct stat st;
    int r;

    r = files_locate(p, path, &f->spot, err, err_size);
    if (r < 0) {
        return r;
    }
    if (strlen(f->spot.name) > room) {
        (void) snprintf(err, err_size, "the file name in '%s' is longer than the %zu bytes a "
                        "save's name may have", f->spot.path, room);
        return -ENAMETOOLONG;
    }
    r = check_target(&f->spot, overwrite, err, err_size);
    if (r < 0) {
        return r;
    }
    do { /* O_EXCL: never an existing file, never through a link, so the file is ours */
        random_suffix(suffix);
        (void) snprintf(f->partial, sizeof(f->partial), ".%s%s%s", f->spot.name,
                        FILES_PARTIAL_MARK, suffix);
        f->fd = openat(f->spot.dirfd, f->partial,
                       O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    } while (f->fd < 0 && errno == EEXIST);
    if (f->fd < 0 || fstat(f->fd, &st) < 0) {
        r = -errno;
        (void) snprintf(err, err_size, "cannot create a file next to '%s': %s", f->spot.path,
                        strerror(-r));
        return r;
    }
    f->exists = true;
    f->dev = st.st_dev;
    f->ino = st.st_ino;
    /* Held while the daemon writes: another daemon's start-up clean-up leaves it alone. */
    (void) flock(f->fd, LOCK_EX | LOCK_NB);
    return 0;
}

/* The partial file is still there, and still the one the daemon created. */
static bool
partial_is_ours(const FileNew *f)
{
    struct stat st;

    return fstatat(f->spot.dirfd, f->partial, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
           st.st_dev == f->dev && st.st_ino == f->ino;
}

static int
rename_noreplace(const FileNew *f)
{
    int dfd = f->spot.dirfd;

    if (renameat2(dfd, f->partial, dfd, f->spot.name, RENAME_NOREPLACE) == 0) {
        return 0;
    }
    if (errno != EINVAL) {
        return -errno;
    }
    /* A file system without RENAME_NOREPLACE: link() never replaces either. */
    if (linkat(dfd, f->partial, dfd, f->spot.name, 0) < 0) {
        return -errno;
    }
    (void) unlinkat(dfd, f->partial, 0);
    return 0;
}

int
files_commit(FileNew *f, bool overwrite, char *err, size_t err_size)
{
    int r;

    if (!partial_is_ours(f)) {
        (void) snprintf(err, err_size, "the partial file of '%s' was replaced or removed while "
                        "it was being written", f->spot.path);
        return -ESTALE;
    }
    r = overwrite ? check_target(&f->spot, true, err, err_size) : 0;
    if (r < 0) {
        return r;
    }
    if (overwrite) {
        r = renameat(f->spot.dirfd, f->partial, f->spot.dirfd, f->spot.name) < 0 ? -errno : 0;
    } else {
        r = rename_noreplace(f);
    }
    if (r < 0) {
        (void) snprintf(err, err_size, r == -EEXIST ? "'%s' appeared while it was being saved; "
                        "allow overwriting to replace it (vfio-migctl save --force)"
                        : "the complete file could not be named '%s': %s", f->spot.path,
                        strerror(-r));
        return r;
    }
    f->exists = false;
    (void) fsync(f->spot.dirfd); /* the name as durable as the data */
    return 0;
}

void
files_discard(FileNew *f)
{
    if (f->exists && partial_is_ours(f)) {
        (void) unlinkat(f->spot.dirfd, f->partial, 0); /* while the lock is still held */
    }
    f->exists = false;
    if (f->fd >= 0) {
        (void) close(TAKE_FD(f->fd));
    }
    files_spot_done(&f->spot);
}

/* ---- unix sockets ---- */

int
files_socket_prepare(const FilePolicy *p, const char *path, FileSocket *s, char *bind_path,
                     size_t bind_path_size, char *err, size_t err_size)
{
    struct stat st;
    int r, n;

    r = files_locate(p, path, &s->spot, err, err_size);
    if (r < 0) {
        return r;
    }
    if (fstatat(s->spot.dirfd, s->spot.name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
        (void) snprintf(err, err_size, "'%s' exists, and vfio-migd removes nothing it did not "
                        "create: remove it (rm '%s') or listen on another path", s->spot.path,
                        s->spot.path);
        return -EEXIST;
    }
    if (errno != ENOENT) {
        r = -errno;
        (void) snprintf(err, err_size, "cannot listen on '%s': %s", s->spot.path, strerror(-r));
        return r;
    }
    /* bind() resolves a path: through the directory already opened, nothing can be swapped. */
    n = snprintf(bind_path, bind_path_size, "/proc/self/fd/%d/%s", s->spot.dirfd, s->spot.name);
    if (n < 0 || (size_t) n >= bind_path_size) {
        (void) snprintf(err, err_size, "the socket name in '%s' is too long for a unix socket "
                        "address", s->spot.path);
        return -ENAMETOOLONG;
    }
    return 0;
}

void
files_socket_bound(FileSocket *s)
{
    struct stat st;

    if (fstatat(s->spot.dirfd, s->spot.name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
        S_ISSOCK(st.st_mode)) {
        s->dev = st.st_dev;
        s->ino = st.st_ino;
        s->bound = true;
    }
}

void
files_socket_remove(FileSocket *s)
{
    struct stat st;

    if (s->bound && fstatat(s->spot.dirfd, s->spot.name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
        S_ISSOCK(st.st_mode) && st.st_dev == s->dev && st.st_ino == s->ino) {
        (void) unlinkat(s->spot.dirfd, s->spot.name, 0);
    }
    s->bound = false;
    files_spot_done(&s->spot);
}

/* ---- start-up clean-up ---- */

/* Removes @name if it is a partial file of this user that no daemon holds. */
static bool
remove_if_stale(int dfd, const char *name)
{
    _cleanup_close_ int fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY |
                                                   O_CLOEXEC);
    struct stat st, now;

    if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_uid != geteuid() ||
        flock(fd, LOCK_EX | LOCK_NB) < 0) {
        return false; /* not ours, or a daemon is writing it */
    }
    if (fstatat(dfd, name, &now, AT_SYMLINK_NOFOLLOW) < 0 || now.st_dev != st.st_dev ||
        now.st_ino != st.st_ino) {
        return false;
    }
    return unlinkat(dfd, name, 0) == 0;
}

static void
closedirp(DIR **d)
{
    if (*d) {
        (void) closedir(*d);
    }
}

static unsigned
stale_walk(int dfd, char *path, size_t size, dev_t dev, unsigned depth, unsigned *budget)
{
    int fd = fcntl(dfd, F_DUPFD_CLOEXEC, 3);
    _cleanup_(closedirp) DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    size_t len = strlen(path);
    unsigned removed = 0;
    struct dirent *e;

    if (!d) {
        if (fd >= 0) {
            (void) close(fd);
        }
        return 0;
    }
    while (*budget > 0 && (e = readdir(d))) {
        (*budget)--;
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) {
            continue;
        }
        (void) snprintf(path + len, size - len, "/%s", e->d_name);
        if (files_is_partial_name(e->d_name) && remove_if_stale(dirfd(d), e->d_name)) {
            log_info("Removed '%s', a partial save file of a vfio-migd that stopped while "
                     "saving.", path);
            removed++;
        } else if (depth < STALE_MAX_DEPTH && (e->d_type == DT_DIR || e->d_type == DT_UNKNOWN)) {
            _cleanup_close_ int sub = openat(dirfd(d), e->d_name,
                                             O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            struct stat st;

            if (sub >= 0 && fstat(sub, &st) == 0 && st.st_dev == dev) {
                removed += stale_walk(sub, path, size, dev, depth + 1, budget);
            }
        }
        path[len] = '\0';
    }
    return removed;
}

unsigned
files_remove_stale(const FilePolicy *p)
{
    unsigned removed = 0, budget = STALE_MAX_ENTRIES;
    char path[FILES_PATH_MAX];

    for (size_t i = 0; i < p->n_dirs; i++) {
        _cleanup_close_ int dfd = open(p->dirs[i], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        struct stat st;

        if (dfd < 0 || fstat(dfd, &st) < 0) {
            log_debug("Allowed directory '%s' cannot be opened (%s); nothing to clean there.",
                      p->dirs[i], strerror(errno));
            continue;
        }
        (void) snprintf(path, sizeof(path), "%s", strcmp(p->dirs[i], "/") ? p->dirs[i] : "");
        removed += stale_walk(dfd, path, sizeof(path), st.st_dev, 0, &budget);
    }
    if (budget == 0) {
        log_notice("The allowed directories hold more than %d entries; the search for stale "
                   "partial save files stopped there.", STALE_MAX_ENTRIES);
    }
    return removed;
}
