/* SPDX-License-Identifier: MIT */
/*
 * test_files — daemon/files: where the daemon may put and read files, on a real directory
 * tree with symbolic links, FIFOs and files swapped under it. Every test that resolves a path
 * runs twice: with openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS), and with the component
 * walk (O_NOFOLLOW | O_DIRECTORY) that kernels without openat2 get, so both refuse the same.
 *
 * The tree, under a fresh temporary directory R:
 *   R/allowed/                  the one allowed directory
 *   R/allowed/sub/              a directory inside
 *   R/allowed/sub/here -> .     a link that stays inside: still refused
 *   R/allowed/out -> ../outside a link that leaves
 *   R/allowed/file              a regular file ("content")
 *   R/outside/                  not allowed
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "files.h"
#include "tmptree.h"

TestSuite(files, .timeout = 30);

static char root[256];
static char allowed[300];

/* Writes root/@rel into @buf and returns @buf. */
static const char *
path_of(char *buf, size_t size, const char *rel)
{
    int n = snprintf(buf, size, "%s/%s", root, rel);

    cr_assert(n > 0 && (size_t) n < size, "path too long: %s/%s", root, rel);
    return buf;
}

static void
put(const char *rel, const char *content, mode_t mode)
{
    char p[512];
    int fd;

    path_of(p, sizeof(p), rel);
    fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, mode);
    cr_assert_geq(fd, 0, "create %s: %s", p, strerror(errno));
    cr_assert_eq(write(fd, content, strlen(content)), (ssize_t) strlen(content));
    (void) fchmod(fd, mode);
    (void) close(fd);
}

static char *
slurp(const char *rel)
{
    static char buf[256];
    char p[512];
    int fd;
    ssize_t n;

    path_of(p, sizeof(p), rel);
    fd = open(p, O_RDONLY);
    if (fd < 0) {
        return NULL;
    }
    n = read(fd, buf, sizeof(buf) - 1);
    (void) close(fd);
    buf[n > 0 ? n : 0] = '\0';
    return buf;
}

static bool
exists(const char *rel)
{
    char p[512];
    struct stat st;

    path_of(p, sizeof(p), rel);
    return lstat(p, &st) == 0;
}

static void
mklink(const char *target, const char *rel)
{
    char p[512];

    path_of(p, sizeof(p), rel);
    cr_assert_eq(symlink(target, p), 0, "symlink %s: %s", p, strerror(errno));
}

static void
setup_tree(void)
{
    char p[512];

    (void) snprintf(root, sizeof(root), "%s/vfio-migd-files.XXXXXX",
                    getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    cr_assert_not_null(mkdtemp(root));
    (void) snprintf(allowed, sizeof(allowed), "%s/allowed", root);
    cr_assert_eq(mkdir(allowed, 0700), 0);
    path_of(p, sizeof(p), "allowed/sub");
    cr_assert_eq(mkdir(p, 0700), 0);
    path_of(p, sizeof(p), "outside");
    cr_assert_eq(mkdir(p, 0700), 0);
    mklink(".", "allowed/sub/here");
    mklink("../outside", "allowed/out");
    put("allowed/file", "content", 0600);
}

static void
teardown_tree(void)
{
    cr_expect_eq(tmptree_remove(root), 0, "removing %s", root);
}

/* A policy allowing R/allowed, resolving with openat2 or with the walk. */
static FilePolicy
policy(bool walk)
{
    FilePolicy p = {.no_openat2 = walk};
    char err[256];

    cr_assert_eq(files_policy_allow(&p, allowed, err, sizeof(err)), 0, "%s", err);
    return p;
}

/* The test NAME twice: NAME_openat2 and NAME_walk, each calling CHECK(walk) on a fresh tree. */
#define BOTH_RESOLVERS(name, check)                                                                \
    Test(files, name##_openat2, .init = setup_tree, .fini = teardown_tree)                         \
    {                                                                                              \
        check(false);                                                                              \
    }                                                                                              \
    Test(files, name##_walk, .init = setup_tree, .fini = teardown_tree)                            \
    {                                                                                              \
        check(true);                                                                               \
    }

/* ---- pure helpers ---- */

Test(files, canonical)
{
    static const struct {
        const char *in, *out;
    } cases[] = {
        {"/", "/"},          {"//", "/"},           {"/a", "/a"},
        {"/a/", "/a"},       {"/a//b", "/a/b"},     {"/a/./b", "/a/b"},
        {"/a/b/..", "/a"},   {"/a/b/../c", "/a/c"}, {"/..", "/"},
        {"/../a", "/a"},     {"/a/../..", "/"},     {"/a/.../b", "/a/.../b"},
        {"/a/..b/c", "/a/..b/c"},
    };
    char out[64];

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        cr_expect_eq(files_canonical(cases[i].in, out, sizeof(out)), 0, "%s", cases[i].in);
        cr_expect_str_eq(out, cases[i].out, "%s", cases[i].in);
    }
    cr_expect_eq(files_canonical("a/b", out, sizeof(out)), -EINVAL);
    cr_expect_eq(files_canonical("", out, sizeof(out)), -EINVAL);
    cr_expect_eq(files_canonical("/abcdef", out, 7), -ENAMETOOLONG);
    cr_expect_eq(files_canonical("/abcde", out, 7), 0);
}

Test(files, partial_names)
{
    cr_expect(files_is_partial_name(".vm.sav" FILES_PARTIAL_MARK "aZ09xy"));
    cr_expect(files_is_partial_name(".x" FILES_PARTIAL_MARK "000000"));
    cr_expect_not(files_is_partial_name("." FILES_PARTIAL_MARK "aZ09xy"), "no NAME");
    cr_expect_not(files_is_partial_name("vm.sav" FILES_PARTIAL_MARK "aZ09xy"), "no dot");
    cr_expect_not(files_is_partial_name(".vm.sav" FILES_PARTIAL_MARK "aZ09x"), "5 letters");
    cr_expect_not(files_is_partial_name(".vm.sav" FILES_PARTIAL_MARK "aZ09x-"), "a dash");
    cr_expect_not(files_is_partial_name(".vm.sav" FILES_PARTIAL_MARK "aZ09xyz"), "7 letters");
    cr_expect_not(files_is_partial_name("vm.sav.partial"));
    cr_expect_not(files_is_partial_name(""));
}

Test(files, policy)
{
    FilePolicy p = {0};
    char err[256] = "", buf[256];

    cr_expect_eq(files_policy_allow(&p, "relative", err, sizeof(err)), -EINVAL);
    cr_expect(strstr(err, "'relative' is not an absolute directory path"), "%s", err);
    cr_expect_eq(files_policy_allow(&p, "/srv//saves/", err, sizeof(err)), 0);
    cr_expect_eq(files_policy_allow(&p, "/srv/saves", err, sizeof(err)), 0, "again: ignored");
    cr_expect_eq(files_policy_allow(&p, "/var/lib/vfio-migd", err, sizeof(err)), 0);
    cr_expect_eq(p.n_dirs, 2u);
    files_policy_describe(&p, buf, sizeof(buf));
    cr_expect_str_eq(buf, "'/srv/saves', '/var/lib/vfio-migd'");
    files_policy_clear(&p);
    cr_expect_eq(p.n_dirs, 0u);
    files_policy_describe(&p, buf, sizeof(buf));
    cr_expect_str_eq(buf, "none");
    for (int i = 0; i < FILES_MAX_DIRS; i++) {
        (void) snprintf(buf, sizeof(buf), "/d%d", i);
        cr_assert_eq(files_policy_allow(&p, buf, err, sizeof(err)), 0);
    }
    cr_expect_eq(files_policy_allow(&p, "/one-too-many", err, sizeof(err)), -E2BIG);
    files_policy_clear(&p);
}

/* ---- locating ---- */

static int
locate(const FilePolicy *p, const char *rel, FileSpot *s, char *err, size_t err_size)
{
    char path[512];

    *s = (FileSpot) FILE_SPOT_INIT;
    return files_locate(p, path_of(path, sizeof(path), rel), s, err, err_size);
}

static void
check_locate(bool walk)
{
    FilePolicy p = policy(walk);
    struct stat a, b;
    char err[512] = "", sub[512];
    FileSpot s;

    cr_assert_eq(locate(&p, "allowed/x.sav", &s, err, sizeof(err)), 0, "%s", err);
    cr_expect_str_eq(s.name, "x.sav");
    cr_expect(fstat(s.dirfd, &a) == 0 && stat(allowed, &b) == 0 && a.st_ino == b.st_ino);
    files_spot_done(&s);
    cr_expect_eq(s.dirfd, -EBADF);

    cr_assert_eq(locate(&p, "allowed/sub/x.sav", &s, err, sizeof(err)), 0, "%s", err);
    path_of(sub, sizeof(sub), "allowed/sub");
    cr_expect(fstat(s.dirfd, &a) == 0 && stat(sub, &b) == 0 && a.st_ino == b.st_ino);
    files_spot_done(&s);

    cr_assert_eq(locate(&p, "allowed/sub/../x.sav", &s, err, sizeof(err)), 0, "..: as text");
    cr_expect(strstr(s.path, "/allowed/x.sav") != NULL, "%s", s.path);
    files_spot_done(&s);

    cr_expect_eq(locate(&p, "allowed/out/x.sav", &s, err, sizeof(err)), -ELOOP, "a link out");
    cr_expect(strstr(err, "symbolic link") && strstr(err, "name the real path"), "%s", err);
    cr_expect_eq(s.dirfd, -EBADF);
    cr_expect_eq(locate(&p, "allowed/sub/here/x.sav", &s, err, sizeof(err)), -ELOOP,
                 "a link that stays inside is refused too");
    cr_expect_eq(locate(&p, "outside/x.sav", &s, err, sizeof(err)), -EPERM);
    cr_expect(strstr(err, "outside the directories") && strstr(err, "allowed_dirs"), "%s", err);
    cr_expect_eq(locate(&p, "allowed/../outside/x.sav", &s, err, sizeof(err)), -EPERM);
    cr_expect_eq(locate(&p, "allowedx/x.sav", &s, err, sizeof(err)), -EPERM, "a prefix only");
    cr_expect_eq(locate(&p, "allowed", &s, err, sizeof(err)), -EPERM, "the directory itself");
    cr_expect_eq(locate(&p, "allowed/nodir/x.sav", &s, err, sizeof(err)), -ENOENT);
    cr_expect(strstr(err, "does not exist"), "%s", err);
    cr_expect_eq(locate(&p, "allowed/file/x.sav", &s, err, sizeof(err)), -ENOTDIR);
    files_policy_clear(&p);
}

BOTH_RESOLVERS(locate, check_locate)

/* ---- reading ---- */

static int
open_read(const FilePolicy *p, const char *rel, int *fd, char *err, size_t err_size)
{
    char path[512];

    *fd = -1;
    return files_open_read(p, path_of(path, sizeof(path), rel), fd, err, err_size);
}

static void
check_open_read(bool walk)
{
    FilePolicy p = policy(walk);
    char err[512] = "", fifo[512], buf[16] = "";
    int fd;

    cr_assert_eq(open_read(&p, "allowed/file", &fd, err, sizeof(err)), 0, "%s", err);
    cr_expect_eq(fcntl(fd, F_GETFL) & O_NONBLOCK, 0, "blocking once checked");
    cr_expect_eq(fcntl(fd, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
    cr_expect_eq(read(fd, buf, sizeof(buf)), 7);
    (void) close(fd);

    mklink("file", "allowed/link");
    cr_expect_eq(open_read(&p, "allowed/link", &fd, err, sizeof(err)), -ELOOP);
    cr_expect(strstr(err, "symbolic link"), "%s", err);
    path_of(fifo, sizeof(fifo), "allowed/fifo");
    cr_assert_eq(mkfifo(fifo, 0600), 0);
    /* No writer: an open without O_NONBLOCK would block here for ever (the suite's timeout). */
    cr_expect_eq(open_read(&p, "allowed/fifo", &fd, err, sizeof(err)), -EINVAL);
    cr_expect(strstr(err, "not a regular file"), "%s", err);
    mklink("fifo", "allowed/fifolink");
    cr_expect_eq(open_read(&p, "allowed/fifolink", &fd, err, sizeof(err)), -ELOOP);
    cr_expect_eq(open_read(&p, "allowed/sub", &fd, err, sizeof(err)), -EINVAL, "a directory");
    cr_expect_eq(open_read(&p, "allowed/missing", &fd, err, sizeof(err)), -ENOENT);
    cr_expect_eq(open_read(&p, "allowed/out/x", &fd, err, sizeof(err)), -ELOOP);
    cr_expect_eq(open_read(&p, "outside/x", &fd, err, sizeof(err)), -EPERM);
    cr_expect_eq(fd, -1, "nothing returned on a refusal");
    files_policy_clear(&p);
}

BOTH_RESOLVERS(open_read, check_open_read)

/* ---- saving ---- */

static int
create(const FilePolicy *p, const char *rel, bool overwrite, FileNew *f, char *err,
       size_t err_size)
{
    char path[512];

    *f = (FileNew) FILE_NEW_INIT;
    return files_create(p, path_of(path, sizeof(path), rel), overwrite, f, err, err_size);
}

static void
write_all(FileNew *f, const char *text)
{
    cr_assert_eq(write(f->fd, text, strlen(text)), (ssize_t) strlen(text));
}

static void
check_create(bool walk)
{
    FilePolicy p = policy(walk);
    char err[512] = "", partial[600];
    struct stat st;
    FileNew f;

    /* A new file: a partial file of the daemon's, 0600, then renamed. */
    cr_assert_eq(create(&p, "allowed/sub/new.sav", false, &f, err, sizeof(err)), 0, "%s", err);
    cr_expect(files_is_partial_name(f.partial), "%s", f.partial);
    cr_expect(strncmp(f.partial, ".new.sav" FILES_PARTIAL_MARK, 8) == 0, "%s", f.partial);
    (void) snprintf(partial, sizeof(partial), "allowed/sub/%s", f.partial);
    cr_expect(exists(partial));
    cr_expect(fstat(f.fd, &st) == 0 && (st.st_mode & 07777) == 0600 && st.st_uid == geteuid());
    cr_expect_not(exists("allowed/sub/new.sav"), "no file under the name before the commit");
    write_all(&f, "saved");
    cr_assert_eq(files_commit(&f, false, err, sizeof(err)), 0, "%s", err);
    files_discard(&f);
    cr_expect_str_eq(slurp("allowed/sub/new.sav"), "saved");
    cr_expect_not(exists(partial), "renamed, not copied");

    /* An existing file: refused without overwrite, before anything is created. */
    cr_expect_eq(create(&p, "allowed/file", false, &f, err, sizeof(err)), -EEXIST);
    cr_expect(strstr(err, "--force"), "%s", err);
    cr_expect_eq(f.fd, -EBADF);
    files_discard(&f);
    /* ... replaced with it. */
    cr_assert_eq(create(&p, "allowed/file", true, &f, err, sizeof(err)), 0, "%s", err);
    write_all(&f, "new");
    cr_assert_eq(files_commit(&f, true, err, sizeof(err)), 0, "%s", err);
    files_discard(&f);
    cr_expect_str_eq(slurp("allowed/file"), "new");

    /* Never through or over a link, a directory or anything but a regular file. */
    put("outside/victim", "victim", 0644);
    mklink("../outside/victim", "allowed/link.sav");
    cr_expect_eq(create(&p, "allowed/link.sav", false, &f, err, sizeof(err)), -EEXIST);
    files_discard(&f);
    cr_expect_eq(create(&p, "allowed/link.sav", true, &f, err, sizeof(err)), -ELOOP);
    cr_expect(strstr(err, "symbolic link") && strstr(err, "rm "), "%s", err);
    files_discard(&f);
    cr_expect_eq(create(&p, "allowed/sub", true, &f, err, sizeof(err)), -EISDIR);
    files_discard(&f);
    path_of(partial, sizeof(partial), "allowed/fifo.sav");
    cr_assert_eq(mkfifo(partial, 0600), 0);
    cr_expect_eq(create(&p, "allowed/fifo.sav", true, &f, err, sizeof(err)), -EINVAL);
    cr_expect(strstr(err, "not a regular file"), "%s", err);
    files_discard(&f);
    cr_expect_eq(create(&p, "allowed/out/x.sav", false, &f, err, sizeof(err)), -ELOOP);
    files_discard(&f);
    cr_expect_eq(create(&p, "outside/x.sav", false, &f, err, sizeof(err)), -EPERM);
    files_discard(&f);
    cr_expect_str_eq(slurp("outside/victim"), "victim", "the link's target is untouched");
    cr_expect_not(exists("outside/x.sav"));
    files_policy_clear(&p);
}

BOTH_RESOLVERS(create, check_create)

/* What others do meanwhile: the name taken, the partial file replaced or removed. */
Test(files, commit_and_discard_race, .init = setup_tree, .fini = teardown_tree)
{
    FilePolicy p = policy(false);
    char err[512] = "", partial[600], path[600];
    FileNew f;

    /* NAME appears while the file is written: no overwrite, so the commit refuses; the
     * partial file goes with the discard; NAME is left alone. */
    cr_assert_eq(create(&p, "allowed/a.sav", false, &f, err, sizeof(err)), 0, "%s", err);
    (void) snprintf(partial, sizeof(partial), "allowed/%s", f.partial);
    put("allowed/a.sav", "someone else's", 0644);
    cr_expect_eq(files_commit(&f, false, err, sizeof(err)), -EEXIST);
    cr_expect(strstr(err, "appeared"), "%s", err);
    cr_expect(exists(partial));
    files_discard(&f);
    cr_expect_not(exists(partial), "the daemon's partial file is removed");
    cr_expect_str_eq(slurp("allowed/a.sav"), "someone else's");

    /* A link put at NAME meanwhile, with overwrite: refused, the link left alone. */
    cr_assert_eq(create(&p, "allowed/b.sav", true, &f, err, sizeof(err)), 0, "%s", err);
    put("outside/victim", "victim", 0644);
    mklink("../outside/victim", "allowed/b.sav");
    cr_expect_eq(files_commit(&f, true, err, sizeof(err)), -ELOOP);
    files_discard(&f);
    cr_expect_str_eq(slurp("outside/victim"), "victim");

    /* The partial file replaced by another file: not committed, and not removed either. */
    cr_assert_eq(create(&p, "allowed/c.sav", false, &f, err, sizeof(err)), 0, "%s", err);
    (void) snprintf(partial, sizeof(partial), "allowed/%s", f.partial);
    path_of(path, sizeof(path), partial);
    cr_assert_eq(unlink(path), 0);
    put(partial, "planted", 0666);
    cr_expect_eq(files_commit(&f, false, err, sizeof(err)), -ESTALE);
    files_discard(&f);
    cr_expect_str_eq(slurp(partial), "planted", "what the daemon did not create stays");
    cr_expect_not(exists("allowed/c.sav"));
    files_policy_clear(&p);
}

/* ---- unix sockets ---- */

static int
bind_at(const char *bind_path)
{
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

    cr_assert_geq(fd, 0);
    cr_assert_lt(strlen(bind_path), sizeof(a.sun_path));
    strcpy(a.sun_path, bind_path);
    cr_assert_eq(bind(fd, (struct sockaddr *) &a, sizeof(a)), 0, "bind %s: %s", bind_path,
                 strerror(errno));
    return fd;
}

Test(files, sockets, .init = setup_tree, .fini = teardown_tree)
{
    FilePolicy p = policy(false);
    FileSocket s = FILE_SOCKET_INIT;
    char err[512] = "", bind_path[108], path[512];
    struct stat st;
    int fd;

    path_of(path, sizeof(path), "allowed/file");
    cr_expect_eq(files_socket_prepare(&p, path, &s, bind_path, sizeof(bind_path), err,
                                      sizeof(err)), -EEXIST, "an existing file is not replaced");
    cr_expect(strstr(err, "removes nothing it did not create"), "%s", err);
    files_socket_remove(&s);
    cr_expect_str_eq(slurp("allowed/file"), "content");

    path_of(path, sizeof(path), "allowed/out/m.sock");
    cr_expect_eq(files_socket_prepare(&p, path, &s, bind_path, sizeof(bind_path), err,
                                      sizeof(err)), -ELOOP);
    files_socket_remove(&s);

    /* Bound through the opened directory; removed when it is still ours. */
    path_of(path, sizeof(path), "allowed/sub/m.sock");
    cr_assert_eq(files_socket_prepare(&p, path, &s, bind_path, sizeof(bind_path), err,
                                      sizeof(err)), 0, "%s", err);
    cr_expect(strncmp(bind_path, "/proc/self/fd/", 14) == 0, "%s", bind_path);
    fd = bind_at(bind_path);
    files_socket_bound(&s);
    cr_expect(stat(path, &st) == 0 && S_ISSOCK(st.st_mode), "the socket is where it was asked");
    files_socket_remove(&s);
    cr_expect_not(exists("allowed/sub/m.sock"));
    (void) close(fd);

    /* Replaced meanwhile by someone else's file: left alone. */
    cr_assert_eq(files_socket_prepare(&p, path, &s, bind_path, sizeof(bind_path), err,
                                      sizeof(err)), 0, "%s", err);
    fd = bind_at(bind_path);
    files_socket_bound(&s);
    cr_assert_eq(unlink(path), 0);
    put("allowed/sub/m.sock", "not a socket", 0644);
    files_socket_remove(&s);
    cr_expect_str_eq(slurp("allowed/sub/m.sock"), "not a socket");
    (void) close(fd);
    files_policy_clear(&p);
}

/* ---- start-up clean-up ---- */

Test(files, remove_stale, .init = setup_tree, .fini = teardown_tree)
{
    FilePolicy p = policy(false);
    const char *stale1 = "allowed/.a.sav" FILES_PARTIAL_MARK "abc123";
    const char *stale2 = "allowed/sub/.b.sav" FILES_PARTIAL_MARK "XYZ789";
    const char *held = "allowed/.c.sav" FILES_PARTIAL_MARK "held00";
    const char *other = "allowed/.d.sav" FILES_PARTIAL_MARK "short";
    const char *linked = "allowed/.e.sav" FILES_PARTIAL_MARK "link00";
    const char *outside = "outside/.f.sav" FILES_PARTIAL_MARK "abc123";
    char path[512];
    int fd;

    put(stale1, "x", 0600);
    put(stale2, "x", 0600);
    put(held, "x", 0600);
    put(other, "x", 0600);
    put(outside, "x", 0600);
    put("outside/target", "target", 0600);
    mklink("../outside/target", linked);
    path_of(path, sizeof(path), held);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    cr_assert_geq(fd, 0);
    cr_assert_eq(flock(fd, LOCK_EX), 0, "as a daemon that writes it holds it");

    cr_expect_eq(files_remove_stale(&p), 2u);
    cr_expect_not(exists(stale1));
    cr_expect_not(exists(stale2), "in a subdirectory too");
    cr_expect(exists(held), "a file a daemon holds stays");
    cr_expect(exists(other), "a name that is not the daemon's stays");
    cr_expect(exists(linked), "a link stays");
    cr_expect_str_eq(slurp("outside/target"), "target");
    cr_expect(exists(outside), "nothing outside the allowed directories is touched");
    (void) close(fd);
    cr_expect_eq(files_remove_stale(&p), 1u, "once nobody holds it");
    files_policy_clear(&p);
}
