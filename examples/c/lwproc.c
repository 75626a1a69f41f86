/*
 * Process contexts (rump_lwproc(3)) and kernel handles: rfork with
 * shared, copied and cleared descriptor tables, new lwps, switching,
 * release; several kernels and the calling thread's current one; calls
 * after a halt; bad handles.
 */
#include <fcntl.h>
#include <pthread.h>
#include <unistd.h>

#include <rump/rump.h>

#include "check.h"

static int main_pid;

static void *other_thread(void *arg) {
    (void)arg;
    /* a thread that chose nothing calls the default kernel's first process */
    CHECK(rump_sys_getpid() == main_pid);
    CHECK(rump_pub_lwproc_curlwp() == NULL);
    return NULL;
}

int main(void) {
    struct stat st;
    CHECK(rump_kernel_current() == NULL);
    CHECK(rump_init() == 0);
    CHECK(rump_init() == 0); /* again: nothing happens */
    struct rump_kernel *k1 = rump_kernel_current();
    CHECK(k1 != NULL);
    main_pid = OK(rump_sys_getpid());
    int fd = OK(rump_sys_open("/x", O_CREAT | O_RDWR, 0644));
    CHECK(rump_pub_lwproc_curlwp() == NULL);

    /* a child with a copy of the table */
    CHECK(rump_pub_lwproc_rfork(RUMP_RFFDG) == 0);
    struct lwp *l1 = rump_pub_lwproc_curlwp();
    CHECK(l1 != NULL);
    int child = OK(rump_sys_getpid());
    CHECK(child != main_pid && OK(rump_sys_getppid()) == main_pid);
    CHECK(OK(rump_sys_write(fd, "c", 1)) == 1);
    OK(rump_sys_close(fd)); /* the child's copy only */
    OK(rump_pub_lwproc_switch(NULL));
    CHECK(rump_sys_getpid() == main_pid && rump_pub_lwproc_curlwp() == NULL);
    OK(rump_sys_fstat(fd, &st));
    CHECK(st.st_size == 1);
    OK(rump_pub_lwproc_switch(l1));
    CHECK(rump_sys_getpid() == child);
    FAILS(rump_sys_fstat(fd, &st), EBADF);

    /* a grandchild with an empty table, then released */
    CHECK(rump_pub_lwproc_rfork(RUMP_RFCFDG) == 0);
    int grandchild = OK(rump_sys_getpid());
    CHECK(grandchild != child && OK(rump_sys_getppid()) == child);
    OK(rump_pub_lwproc_releaselwp());
    CHECK(rump_pub_lwproc_curlwp() == NULL && rump_sys_getpid() == main_pid);
    CHECK(rump_pub_lwproc_newlwp(grandchild) == ESRCH); /* it exited */

    /* a second lwp of the child; the child lives while one is left */
    CHECK(rump_pub_lwproc_newlwp(child) == 0);
    struct lwp *l3 = rump_pub_lwproc_curlwp();
    CHECK(l3 != NULL && l3 != l1 && rump_sys_getpid() == child);
    OK(rump_pub_lwproc_releaselwp());
    CHECK(rump_pub_lwproc_newlwp(child) == 0);
    OK(rump_pub_lwproc_releaselwp());
    OK(rump_pub_lwproc_switch(l1));
    OK(rump_pub_lwproc_releaselwp());
    CHECK(rump_pub_lwproc_newlwp(child) == ESRCH);
    FAILS(rump_pub_lwproc_switch(l1), EINVAL); /* released */

    /* a child sharing the table: what it opens, the parent has */
    CHECK(rump_pub_lwproc_rfork(0) == 0);
    int shared = OK(rump_sys_open("/x", O_RDONLY, 0));
    OK(rump_pub_lwproc_releaselwp());
    OK(rump_sys_fstat(shared, &st));
    OK(rump_sys_close(shared));

    /* credentials and root directory of a child, not of the parent */
    CHECK(rump_pub_lwproc_rfork(RUMP_RFFDG) == 0);
    CHECK(rump_sys_getuid() == 0 && rump_sys_geteuid() == 0);
    CHECK(rump_sys_getgid() == 0 && rump_sys_getegid() == 0);
    gid_t groups[4] = {5, 6, 7, 0};
    OK(rump_sys_setgroups(3, groups));
    CHECK(rump_sys_getgroups(0, NULL) == 3);
    gid_t got[4] = {0};
    CHECK(OK(rump_sys_getgroups(4, got)) == 3 && got[0] == 5 && got[2] == 7);
    FAILS(rump_sys_getgroups(1, got), EINVAL);
    OK(rump_sys_mkdir("/jail", 0755));
    OK(rump_sys_mkdir("/jail/inner", 0755));
    OK(rump_sys_chroot("/jail"));
    OK(rump_sys_chdir("/"));
    OK(rump_sys_stat("/inner", &st));
    FAILS(rump_sys_stat("/x", &st), ENOENT);
    OK(rump_sys_setgid(100));
    OK(rump_sys_setuid(1000));
    CHECK(rump_sys_getuid() == 1000 && rump_sys_getgid() == 100);
    FAILS(rump_sys_setuid(0), EPERM);
    FAILS(rump_sys_chroot("/inner"), EPERM);
    OK(rump_pub_lwproc_releaselwp());
    CHECK(rump_sys_getuid() == 0);
    OK(rump_sys_stat("/x", &st));

    /* bad arguments: errors, not crashes */
    CHECK(rump_pub_lwproc_rfork(RUMP_RFFDG | RUMP_RFCFDG) == EINVAL);
    CHECK(rump_pub_lwproc_rfork(0x7777) == EINVAL);
    FAILS(rump_pub_lwproc_switch((struct lwp *)0x1234), EINVAL);
    FAILS(rump_pub_lwproc_releaselwp(), EINVAL);
    CHECK(rump_pub_lwproc_newlwp(999999) == ESRCH);
    FAILS(rump_kernel_halt((struct rump_kernel *)0x4321), EINVAL);
    FAILS(rump_kernel_set_current((struct rump_kernel *)0x4321), EINVAL);
    CHECK(rump_init_server("bogus://x") == EINVAL);
    CHECK(rump_init_server(NULL) == EFAULT);

    pthread_t t;
    CHECK(pthread_create(&t, NULL, other_thread, NULL) == 0);
    CHECK(pthread_join(t, NULL) == 0);

    /* a second kernel: its own files */
    struct rump_kernel *k2 = rump_kernel_boot(NULL);
    CHECK(k2 != NULL && k2 != k1);
    OK(rump_kernel_set_current(k2));
    CHECK(rump_kernel_current() == k2);
    FAILS(rump_sys_stat("/x", &st), ENOENT);
    CHECK(rump_pub_lwproc_rfork(RUMP_RFFDG) == 0); /* lwproc in k2 */
    CHECK(rump_kernel_current() == k2);
    OK(rump_pub_lwproc_releaselwp());
    OK(rump_kernel_set_current(NULL));
    CHECK(rump_kernel_current() == k1);
    OK(rump_sys_stat("/x", &st));
    OK(rump_kernel_halt(k2));

    /* halting the default kernel: calls fail, rump_init boots anew */
    OK(rump_kernel_halt(k1));
    FAILS(rump_sys_getpid(), ENXIO);
    FAILS(rump_sys_stat("/x", &st), ENXIO);
    CHECK(rump_kernel_current() == NULL);
    CHECK(rump_init() == 0);
    FAILS(rump_sys_stat("/x", &st), ENOENT);
    printf("lwproc: ok\n");
    return 0;
}
