/*
 * A minimal C supervisor, the floor the TypeScript loop is compared with:
 * blocking SECCOMP_IOCTL_NOTIF_RECV (or poll first, with POLL=1), CONTINUE
 * for every openat. Not built by the project; for bench/README numbers:
 *
 *   cc -O2 -o /tmp/reference packages/dispatch/bench/reference.c
 *   /tmp/reference 1 /usr/bin/python3 loop.py    # 1 = sync wake-up on
 */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define NOTIF_SET_FLAGS 0x40082104 /* missing from Debian 12's 6.1 headers */

int main(int argc, char **argv) {
  if (argc < 3) return 2;
  int sync = atoi(argv[1]), use_poll = getenv("POLL") != NULL;
  int up[2], down[2];
  if (pipe(up) || pipe(down)) return 1;
  pid_t pid = fork();
  if (pid == 0) {
    struct sock_filter code[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_openat, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_USER_NOTIF),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = {4, code};
    prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
    int fd = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER, &prog);
    char go;
    if (write(up[1], &fd, 4) != 4 || read(down[0], &go, 1) != 1) _exit(126);
    close(fd);
    execv(argv[2], argv + 2);
    _exit(127);
  }
  int child_fd;
  if (read(up[0], &child_fd, 4) != 4) return 1;
  int pidfd = syscall(SYS_pidfd_open, pid, 0);
  int fd = syscall(SYS_pidfd_getfd, pidfd, child_fd, 0);
  if (sync) ioctl(fd, NOTIF_SET_FLAGS, 1); /* by value */
  if (write(down[1], "g", 1) != 1) return 1;
  struct seccomp_notif notif;
  struct seccomp_notif_resp resp;
  for (;;) {
    struct pollfd p = {fd, POLLIN, 0};
    if (use_poll && (poll(&p, 1, -1) < 0 || !(p.revents & POLLIN))) break;
    memset(&notif, 0, sizeof notif);
    if (ioctl(fd, SECCOMP_IOCTL_NOTIF_RECV, &notif) < 0) {
      if (errno != ENOENT) break;
      poll(&p, 1, 0);
      if (p.revents & POLLHUP) break;
      continue;
    }
    memset(&resp, 0, sizeof resp);
    resp.id = notif.id;
    resp.flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE;
    ioctl(fd, SECCOMP_IOCTL_NOTIF_SEND, &resp);
  }
  int status;
  waitpid(pid, &status, 0);
  return 0;
}
