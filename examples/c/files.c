/*
 * File operations on a rump kernel's tmpfs through the rump_sys_* calls.
 *
 * Built twice by the test suite: against librump (a kernel in this
 * process, rump_init) and, with -DRUMP_CLIENT, against librumpclient (a
 * kernel in `rump server`, found through $RUMP_SERVER). The same calls,
 * the same results.
 */
#include <fcntl.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

#ifdef RUMP_CLIENT
#include <rump/rumpclient.h>
#define BOOT() rumpclient_init()
#else
#include <rump/rump.h>
#define BOOT() rump_init()
#endif

#include "check.h"

struct dirent64_hdr {
    uint64_t ino;
    int64_t off;
    unsigned short reclen;
    unsigned char type;
    char name[];
};

static int dir_has(const char *dir, const char *name) {
    char buf[4096];
    int fd = OK(rump_sys_open(dir, O_RDONLY | O_DIRECTORY, 0));
    int found = 0;
    for (;;) {
        long n = OK(rump_sys_getdents64(fd, buf, sizeof buf));
        if (n == 0)
            break;
        for (long off = 0; off < n;) {
            struct dirent64_hdr *d = (struct dirent64_hdr *)(buf + off);
            if (strcmp(d->name, name) == 0)
                found = 1;
            off += d->reclen;
        }
    }
    OK(rump_sys_close(fd));
    return found;
}

int main(void) {
    char buf[256];
    struct stat st;

    /* Before init there is no kernel: ENXIO, not a crash. */
    FAILS(rump_sys_getpid(), ENXIO);
    CHECK(BOOT() == 0);
    CHECK(rump_sys_getpid() > 0);

    /* A private directory, so two runs against one server do not meet. */
    char top[64];
    snprintf(top, sizeof top, "/t%d", (int)getpid());
    OK(rump_sys_mkdir(top, 0755));
    OK(rump_sys_chdir(top));
    CHECK(OK(rump_sys_getcwd(buf, sizeof buf)) == (long)strlen(top) + 1);
    CHECK(strcmp(buf, top) == 0);
    FAILS(rump_sys_getcwd(buf, 2), ERANGE);

    /* create, write, read back, seek, stat */
    int fd = OK(rump_sys_open("f", O_CREAT | O_RDWR | O_EXCL, 0644));
    FAILS(rump_sys_open("f", O_CREAT | O_RDWR | O_EXCL, 0644), EEXIST);
    CHECK(OK(rump_sys_write(fd, "hello, ", 7)) == 7);
    struct iovec iov[2] = {{"rump ", 5}, {"world", 5}};
    CHECK(OK(rump_sys_writev(fd, iov, 2)) == 10);
    CHECK(OK(rump_sys_pwrite(fd, "W", 1, 12)) == 1);
    CHECK(OK(rump_sys_lseek(fd, 0, SEEK_SET)) == 0);
    memset(buf, 0, sizeof buf);
    CHECK(OK(rump_sys_read(fd, buf, sizeof buf)) == 17);
    CHECK(strcmp(buf, "hello, rump World") == 0);
    CHECK(OK(rump_sys_pread(fd, buf, 4, 7)) == 4 && memcmp(buf, "rump", 4) == 0);
    char a[3] = {0}, b[4] = {0};
    struct iovec riov[2] = {{a, 2}, {b, 3}};
    CHECK(OK(rump_sys_lseek(fd, 0, SEEK_SET)) == 0);
    CHECK(OK(rump_sys_readv(fd, riov, 2)) == 5);
    CHECK(strcmp(a, "he") == 0 && strcmp(b, "llo") == 0);
    OK(rump_sys_fstat(fd, &st));
    CHECK(S_ISREG(st.st_mode) && (st.st_mode & 07777) == 0644 && st.st_size == 17);
    OK(rump_sys_ftruncate(fd, 5));
    OK(rump_sys_fsync(fd));
    OK(rump_sys_fdatasync(fd));
    OK(rump_sys_fstat(fd, &st));
    CHECK(st.st_size == 5);
    /* lseek past the end leaves a hole; RUMP_SEEK_DATA finds the data */
    CHECK(OK(rump_sys_lseek(fd, 1 << 20, SEEK_SET)) == 1 << 20);
    CHECK(OK(rump_sys_write(fd, "x", 1)) == 1);
    CHECK(OK(rump_sys_lseek(fd, 4096, RUMP_SEEK_DATA)) >= 4096);

    /* descriptors: dup, dup2, dup3, fcntl */
    int d1 = OK(rump_sys_dup(fd));
    CHECK(d1 != fd);
    CHECK(OK(rump_sys_dup2(fd, 40)) == 40);
    CHECK(OK(rump_sys_dup3(fd, 41, O_CLOEXEC)) == 41);
    CHECK(OK(rump_sys_fcntl(41, F_GETFD, 0)) == FD_CLOEXEC);
    CHECK((OK(rump_sys_fcntl(fd, F_GETFL, 0)) & O_ACCMODE) == O_RDWR);
    CHECK(OK(rump_sys_fcntl(fd, F_DUPFD, 50)) >= 50);
    FAILS(rump_sys_dup3(fd, fd, 0), EINVAL);
    OK(rump_sys_close(d1));
    OK(rump_sys_close(40));
    OK(rump_sys_close(41));
    OK(rump_sys_close(fd));
    FAILS(rump_sys_close(fd), EBADF);
    FAILS(rump_sys_read(fd, buf, 1), EBADF);

    /* names: stat, rename, link, symlink, readlink, unlink */
    OK(rump_sys_stat("f", &st));
    CHECK(st.st_nlink == 1);
    OK(rump_sys_rename("f", "g"));
    FAILS(rump_sys_stat("f", &st), ENOENT);
    OK(rump_sys_link("g", "h"));
    OK(rump_sys_stat("g", &st));
    CHECK(st.st_nlink == 2);
    OK(rump_sys_symlink("g", "s"));
    OK(rump_sys_lstat("s", &st));
    CHECK(S_ISLNK(st.st_mode));
    memset(buf, 0, sizeof buf);
    CHECK(OK(rump_sys_readlink("s", buf, sizeof buf)) == 1 && buf[0] == 'g');
    CHECK(OK(rump_sys_readlinkat(AT_FDCWD, "s", buf, 1)) == 1);
    OK(rump_sys_fstatat(AT_FDCWD, "s", &st, 0));
    CHECK(S_ISREG(st.st_mode));
    OK(rump_sys_unlink("h"));
    CHECK(dir_has(".", "g") && dir_has(".", "s") && !dir_has(".", "h"));

    /* directories and the *at calls */
    OK(rump_sys_mkdir("d", 0700));
    FAILS(rump_sys_mkdir("d", 0700), EEXIST);
    int dfd = OK(rump_sys_open("d", O_RDONLY | O_DIRECTORY, 0));
    OK(rump_sys_mkdirat(dfd, "sub", 0755));
    int f2 = OK(rump_sys_openat(dfd, "sub/file", O_CREAT | O_WRONLY, 0600));
    OK(rump_sys_close(f2));
    OK(rump_sys_renameat(dfd, "sub/file", dfd, "moved"));
    OK(rump_sys_linkat(dfd, "moved", dfd, "linked", 0));
    OK(rump_sys_symlinkat("moved", dfd, "sl"));
    OK(rump_sys_fchmodat(dfd, "moved", 0640, 0));
    OK(rump_sys_fstatat(dfd, "linked", &st, 0));
    CHECK((st.st_mode & 07777) == 0640);
    OK(rump_sys_faccessat(dfd, "moved", R_OK | W_OK, 0));
    OK(rump_sys_fchownat(dfd, "moved", 12, 34, 0));
    OK(rump_sys_fstatat(dfd, "moved", &st, 0));
    CHECK(st.st_uid == 12 && st.st_gid == 34);
    OK(rump_sys_unlinkat(dfd, "linked", 0));
    OK(rump_sys_unlinkat(dfd, "sl", 0));
    OK(rump_sys_unlinkat(dfd, "moved", 0));
    OK(rump_sys_unlinkat(dfd, "sub", AT_REMOVEDIR));
    OK(rump_sys_fchdir(dfd));
    CHECK(OK(rump_sys_getcwd(buf, sizeof buf)) > 0 && strstr(buf, "/d") != NULL);
    OK(rump_sys_chdir(".."));
    OK(rump_sys_close(dfd));
    FAILS(rump_sys_rmdir("nonexistent"), ENOENT);
    OK(rump_sys_rmdir("d"));

    /* modes, owners, times, sizes */
    fd = OK(rump_sys_creat("m", 0600));
    OK(rump_sys_fchmod(fd, 0604));
    OK(rump_sys_fchown(fd, 7, 8));
    OK(rump_sys_fstat(fd, &st));
    CHECK((st.st_mode & 07777) == 0604 && st.st_uid == 7 && st.st_gid == 8);
    struct timespec ts[2] = {{1000, 5}, {2000, 6}};
    OK(rump_sys_futimens(fd, ts));
    OK(rump_sys_fstat(fd, &st));
    CHECK(st.st_atim.tv_sec == 1000 && st.st_mtim.tv_sec == 2000 && st.st_mtim.tv_nsec == 6);
    OK(rump_sys_close(fd));
    OK(rump_sys_chmod("m", 0644));
    OK(rump_sys_chown("m", 0, 0));
    OK(rump_sys_lchown("m", 1, 1));
    struct timespec ts2[2] = {{3000, 0}, {0, RUMP_UTIME_OMIT}};
    OK(rump_sys_utimensat(AT_FDCWD, "m", ts2, 0));
    OK(rump_sys_stat("m", &st));
    CHECK(st.st_atim.tv_sec == 3000 && st.st_mtim.tv_sec == 2000 && st.st_uid == 1);
    OK(rump_sys_truncate("m", 12345));
    OK(rump_sys_stat("m", &st));
    CHECK(st.st_size == 12345);
    OK(rump_sys_access("m", F_OK));
    FAILS(rump_sys_access("nope", F_OK), ENOENT);
    OK(rump_sys_mknod("fifo", S_IFIFO | 0600, 0));
    OK(rump_sys_mknodat(AT_FDCWD, "fifo2", S_IFIFO | 0600, 0));
    OK(rump_sys_stat("fifo", &st));
    CHECK(S_ISFIFO(st.st_mode));
    CHECK(OK(rump_sys_umask(022)) >= 0);
    CHECK(OK(rump_sys_umask(022)) == 022);

    /* pipes and poll */
    int p[2];
    OK(rump_sys_pipe(p));
    struct pollfd pf[2] = {{p[0], POLLIN, 0}, {p[1], POLLOUT, 0}};
    CHECK(OK(rump_sys_poll(pf, 2, 0)) == 1);
    CHECK(pf[0].revents == 0 && (pf[1].revents & POLLOUT));
    CHECK(OK(rump_sys_write(p[1], "z", 1)) == 1);
    CHECK(OK(rump_sys_poll(pf, 1, 1000)) == 1 && (pf[0].revents & POLLIN));
    CHECK(OK(rump_sys_read(p[0], buf, 10)) == 1 && buf[0] == 'z');
    OK(rump_sys_close(p[0]));
    OK(rump_sys_close(p[1]));
    OK(rump_sys_pipe2(p, O_NONBLOCK | O_CLOEXEC));
    FAILS(rump_sys_read(p[0], buf, 1), EAGAIN);
    OK(rump_sys_close(p[0]));
    OK(rump_sys_close(p[1]));

    /* the file system and the kernel */
    struct statvfs sv;
    OK(rump_sys_statvfs("/", &sv));
    CHECK(sv.f_bsize > 0);
    struct statfs sf;
    OK(rump_sys_statfs("/", &sf));
    CHECK(sf.f_type == 0x01021994); /* TMPFS_MAGIC */
    fd = OK(rump_sys_open(".", O_RDONLY, 0));
    OK(rump_sys_fstatvfs(fd, &sv));
    OK(rump_sys_fstatfs(fd, &sf));
    OK(rump_sys_close(fd));
    OK(rump_sys_sync());
    struct utsname u;
    OK(rump_sys_uname(&u));
    CHECK(strlen(u.sysname) > 0);
    char mounts[4096];
    long n = OK(rump_sys_getmounts(mounts, sizeof mounts));
    CHECK(n > 0 && strstr(mounts, "\"tmpfs\"") != NULL);
    CHECK(OK(rump_sys_getmounts(mounts, 4)) == n && strlen(mounts) == 3);

    /* bad input: an errno, never a crash */
    FAILS(rump_sys_open(NULL, O_RDONLY, 0), EFAULT);
    FAILS(rump_sys_stat("m", NULL), EFAULT);
    FAILS(rump_sys_read(0, NULL, 10), EFAULT);
    FAILS(rump_sys_write(-1, "x", 1), EBADF);
    FAILS(rump_sys_write(0, "x", (size_t)-1), EINVAL);
    char *longname = malloc(8192);
    memset(longname, 'a', 8192);
    FAILS(rump_sys_open(longname, O_RDONLY, 0), ENAMETOOLONG); /* no NUL in range */
    free(longname);
    FAILS(rump_sys_readv(0, NULL, -1), EINVAL);
    FAILS(rump_sys_poll(NULL, 1, 0), EFAULT);
    FAILS(rump_sys_getcwd(NULL, 100), EFAULT);

    /* clean up so a server is left as it was */
    OK(rump_sys_unlink("g"));
    OK(rump_sys_unlink("s"));
    OK(rump_sys_unlink("m"));
    OK(rump_sys_unlink("fifo"));
    OK(rump_sys_unlink("fifo2"));
    OK(rump_sys_chdir("/"));
    OK(rump_sys_rmdir(top));
#ifdef RUMP_CLIENT
    /* after the connection is dropped there is no kernel */
    OK(rumpclient_fini());
    FAILS(rump_sys_getpid(), ENXIO);
#endif
    printf("files: ok\n");
    return 0;
}
