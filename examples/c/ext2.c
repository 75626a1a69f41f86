/*
 * An ext2 image registered with etfs and mounted in a rump kernel:
 *   ext2 IMAGE WRAPPED
 * reads /hello.txt (put there by mke2fs -d), writes /from-c.txt and
 * /dir/nested, renames, unmounts. The test suite checks the image with
 * e2fsck and debugfs afterwards. WRAPPED holds a copy of the image after
 * 1 MiB of something else: registered as a window of that file
 * (rump_pub_etfs_register_withsize), it mounts read-only just the same.
 */
#include <fcntl.h>
#include <sys/stat.h>

#include <rump/rump.h>

#include "check.h"

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: ext2 IMAGE WRAPPED\n");
        return 2;
    }
    CHECK(rump_init() == 0);
    /* a directory, a regular file and an unknown type are refused */
    FAILS(rump_pub_etfs_register("/dev/disk9", argv[1], RUMP_ETFS_DIR), EOPNOTSUPP);
    FAILS(rump_pub_etfs_register("/dev/disk9", argv[1], 77), EINVAL);
    FAILS(rump_pub_etfs_register("/dev/disk9", "/nonexistent.img", RUMP_ETFS_BLK), ENOENT);
    OK(rump_pub_etfs_register("/dev/disk0", argv[1], RUMP_ETFS_BLK));
    FAILS(rump_pub_etfs_register("/dev/disk0", argv[1], RUMP_ETFS_BLK), EEXIST);
    OK(rump_sys_mkdir("/mnt", 0755));
    FAILS(rump_sys_mount("/dev/disk0", "/mnt", "nosuchfs", 0, NULL), ENODEV);
    OK(rump_sys_mount("/dev/disk0", "/mnt", "ext2", 0, NULL));
    FAILS(rump_pub_etfs_remove("/dev/disk0"), EBUSY);

    char buf[256] = {0};
    int fd = OK(rump_sys_open("/mnt/hello.txt", O_RDONLY, 0));
    long n = OK(rump_sys_read(fd, buf, sizeof buf - 1));
    CHECK(n == 12 && strcmp(buf, "hello ext2!\n") == 0);
    OK(rump_sys_close(fd));

    struct statfs sf;
    OK(rump_sys_statfs("/mnt", &sf));
    CHECK(sf.f_type == 0xEF53);

    fd = OK(rump_sys_open("/mnt/from-c.txt", O_CREAT | O_WRONLY | O_TRUNC, 0644));
    for (int i = 0; i < 1000; i++)
        CHECK(OK(rump_sys_write(fd, "written through librump\n", 24)) == 24);
    OK(rump_sys_fsync(fd));
    OK(rump_sys_close(fd));
    OK(rump_sys_mkdir("/mnt/dir", 0755));
    fd = OK(rump_sys_open("/mnt/dir/tmp", O_CREAT | O_WRONLY, 0600));
    CHECK(OK(rump_sys_write(fd, "nested\n", 7)) == 7);
    OK(rump_sys_close(fd));
    OK(rump_sys_rename("/mnt/dir/tmp", "/mnt/dir/nested"));
    struct stat st;
    OK(rump_sys_stat("/mnt/from-c.txt", &st));
    CHECK(st.st_size == 24000);

    FAILS(rump_sys_umount2("/nonexistent", 0), ENOENT);
    OK(rump_sys_umount2("/mnt", 0));
    OK(rump_pub_etfs_remove("/dev/disk0"));
    FAILS(rump_pub_etfs_remove("/dev/disk0"), ENOENT);

    /* a window of a bigger file */
    FAILS(rump_pub_etfs_register_withsize("/dev/win", argv[2], RUMP_ETFS_BLK, 100, RUMP_ETFS_SIZE_ENDOFF), EINVAL);
    FAILS(rump_pub_etfs_register_withsize("/dev/win", argv[2], RUMP_ETFS_BLK, 1 << 20, 1ULL << 40), EINVAL);
    FAILS(rump_pub_etfs_register_withsize("/dev/win", argv[2], RUMP_ETFS_BLK, 1ULL << 40, RUMP_ETFS_SIZE_ENDOFF), EINVAL);
    OK(rump_pub_etfs_register_withsize("/dev/win", argv[2], RUMP_ETFS_BLK | RUMP_ETFS_RDONLY, 1 << 20, RUMP_ETFS_SIZE_ENDOFF));
    OK(rump_sys_mkdir("/win", 0755));
    OK(rump_sys_mount("/dev/win", "/win", "ext2", RUMP_MS_RDONLY, NULL));
    memset(buf, 0, sizeof buf);
    fd = OK(rump_sys_open("/win/hello.txt", O_RDONLY, 0));
    CHECK(OK(rump_sys_read(fd, buf, sizeof buf - 1)) == 12 && strcmp(buf, "hello ext2!\n") == 0);
    OK(rump_sys_close(fd));
    FAILS(rump_sys_open("/win/new", O_CREAT | O_WRONLY, 0644), EROFS);
    OK(rump_sys_umount2("/win", 0));
    OK(rump_pub_etfs_remove("/dev/win"));
    printf("ext2: ok\n");
    return 0;
}
