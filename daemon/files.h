/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * files — where and how the daemon reads and writes files on a caller's behalf: save files,
 * restore files and the unix sockets of incoming migrations. The daemon runs as root, so a
 * path from a request is treated as hostile:
 *
 *  - It must lie in one of the allowed directories (FilePolicy: the state directory and the
 *    configuration's [files] allowed_dirs). The path is made canonical lexically first ("." and ".." resolved as
 *    text), then the directory below the allowed one is opened with openat2(RESOLVE_BENEATH |
 *    RESOLVE_NO_SYMLINKS), or, where the kernel has no openat2, one component at a time with
 *    O_NOFOLLOW | O_DIRECTORY. A symbolic link anywhere below the allowed directory is
 *    refused, and so is one at the file's own name.
 *  - A file is opened once, and that one descriptor is what is checked and used: a restore
 *    opens O_NOFOLLOW | O_NONBLOCK (a FIFO cannot block it), refuses anything but a regular
 *    file (fstat), and only then becomes blocking.
 *  - A save is created under a name of its own, ".NAME.vfio-migd-partial-XXXXXX" (O_CREAT |
 *    O_EXCL | O_NOFOLLOW, mode 0600, so owned by the daemon), and renamed to NAME only when it
 *    is complete: without overwrite with RENAME_NOREPLACE, with overwrite only over a regular
 *    file. While the daemon writes it the file is flock()ed; at start-up the daemon removes
 *    the partial files it finds in the allowed directories that nobody holds (a daemon that
 *    was killed mid-save).
 *  - Nothing is unlinked unless its device and inode say it is what the daemon made: a
 *    partial file, or a socket the daemon bound.
 *
 * Used by:  migration_file.c (save, restore), migration_dest.c (unix listen paths), main.c
 *           (policy, start-up clean-up).
 * Threads:  files_commit() runs on a worker; the rest on the loop. A FileNew or FileSocket
 *           belongs to one job.
 * Errors:   negative errno plus a sentence in @err that names the path and, where there is
 *           one, the way out: -EPERM outside the allowed directories, -ELOOP a symbolic link,
 *           -ENOENT, -EEXIST, -EISDIR, -EINVAL (not a regular file), -ENAMETOOLONG.
 */

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* Where a root daemon keeps its files unless configured otherwise (packaging/tmpfiles). */
#define FILES_STATE_DIR "/var/lib/vfio-migd"
#define FILES_MAX_DIRS 32
#define FILES_PATH_MAX 4096
#define FILES_NAME_MAX 255
/* The mark of the daemon's partial files: ".NAME" + this + 6 random letters or digits. */
#define FILES_PARTIAL_MARK ".vfio-migd-partial-"

typedef struct FilePolicy {
    char *dirs[FILES_MAX_DIRS]; /* canonical absolute paths, no trailing slash */
    size_t n_dirs;
    bool no_openat2;            /* walk components instead (old kernels; and the tests) */
} FilePolicy;

/* Adds an allowed directory (absolute; made canonical). -EINVAL relative, -E2BIG too many. */
int files_policy_allow(FilePolicy *p, const char *dir, char *err, size_t err_size);
void files_policy_clear(FilePolicy *p);
/* "'/var/lib/vfio-migd', '/srv/saves'": for messages. */
void files_policy_describe(const FilePolicy *p, char *buf, size_t size);

/* Canonical form of an absolute path, lexically: no "//", ".", ".." or trailing "/". 0,
 * -EINVAL not absolute, -ENAMETOOLONG. Pure. */
int files_canonical(const char *path, char *out, size_t size);
/* Whether @name is one of the daemon's partial file names (any NAME). Pure. */
bool files_is_partial_name(const char *name);

/* A place for a file: its directory (opened beneath an allowed one) and its name there. */
typedef struct FileSpot {
    int dirfd;                        /* O_RDONLY | O_DIRECTORY, or -EBADF */
    char name[FILES_NAME_MAX + 1];
    char path[FILES_PATH_MAX];        /* canonical, for messages */
} FileSpot;

#define FILE_SPOT_INIT {.dirfd = -EBADF}

int files_locate(const FilePolicy *p, const char *path, FileSpot *ret, char *err,
                 size_t err_size);
void files_spot_done(FileSpot *s);

/* Restore: opens @path for reading, once: a regular file, never through a symbolic link. */
int files_open_read(const FilePolicy *p, const char *path, int *ret_fd, char *err,
                    size_t err_size);

/* Save: the partial file, then its rename to the name asked for. */
typedef struct FileNew {
    FileSpot spot;
    char partial[FILES_NAME_MAX + 1]; /* ".NAME.vfio-migd-partial-XXXXXX", in spot's dir */
    int fd;                           /* write end, flock()ed; -EBADF once closed */
    dev_t dev;                        /* of the partial file, to know it is still ours */
    ino_t ino;
    bool exists;                      /* the partial file is there, ours to remove */
} FileNew;

#define FILE_NEW_INIT {.spot = FILE_SPOT_INIT, .fd = -EBADF}

/* Refuses what could not be completed (an existing NAME without @overwrite, a directory, or a
 * NAME that is not a regular file) and creates the partial file. */
int files_create(const FilePolicy *p, const char *path, bool overwrite, FileNew *ret, char *err,
                 size_t err_size);
/* Gives the complete partial file its name (worker). -EEXIST when NAME appeared meanwhile
 * without @overwrite; -EINVAL when it is no longer a regular file; -ESTALE when the partial
 * file is no longer the one the daemon made. */
int files_commit(FileNew *f, bool overwrite, char *err, size_t err_size);
/* Closes, and removes the partial file if it is still there and still the daemon's. */
void files_discard(FileNew *f);

/* Incoming migrations on unix sockets: bind where a caller said, unlink only what we bound. */
typedef struct FileSocket {
    FileSpot spot;
    dev_t dev;
    ino_t ino;
    bool bound;
} FileSocket;

#define FILE_SOCKET_INIT {.spot = FILE_SPOT_INIT}

/* Locates @path and refuses one that exists (the daemon removes nothing it did not create);
 * fills @bind_path with a path that reaches the spot through its open directory
 * ("/proc/self/fd/N/NAME"), for bind(). */
int files_socket_prepare(const FilePolicy *p, const char *path, FileSocket *ret, char *bind_path,
                         size_t bind_path_size, char *err, size_t err_size);
/* After bind(): notes which inode is ours. */
void files_socket_bound(FileSocket *s);
/* Unlinks the socket file if it is still the one we bound; closes the spot. */
void files_socket_remove(FileSocket *s);

/* Start-up: removes the partial files that no daemon holds from the allowed directories
 * (and their subdirectories, a few levels deep, on the same file system); returns how many. */
unsigned files_remove_stale(const FilePolicy *p);
