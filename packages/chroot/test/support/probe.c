/* A static probe for the chroot tests: each argument is one operation,
 * "op:arg[:arg]", and one line per operation is printed, the same under a
 * real chroot(2) and under the emulated one. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/openat2.h>
#include <sys/prctl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/syscall.h>
#include <pthread.h>
#include <unistd.h>

extern char **environ;
static int saved = -1;
static volatile int racing = 1;

/* Swaps /race/a, a directory, with /race/b, a symlink pointing out, until told to stop. */
static void *swapper(void *unused) {
  (void)unused;
  while (racing) {
    rename("/race/a", "/race/t");
    rename("/race/b", "/race/a");
    rename("/race/a", "/race/b");
    rename("/race/t", "/race/a");
  }
  return NULL;
}

/* execrace: the name another thread writes over the last name of the path being executed. */
static char race_path[256];
static char race_name[128];
static size_t race_at;
static char race_own[128];

static void *renamer(void *unused) {
  (void)unused;
  for (;;) {
    memcpy(race_path + race_at, race_name, strlen(race_name) + 1);
    memcpy(race_path + race_at, race_own, strlen(race_own) + 1);
  }
  return NULL;
}

static void result(const char *op, long value) {
  if (value < 0) printf("%s: %s\n", op, strerrorname_np(errno));
  else printf("%s: ok\n", op);
}

static void content(const char *op, int fd) {
  char buf[128] = {0};
  if (fd < 0) { printf("%s: %s\n", op, strerrorname_np(errno)); return; }
  ssize_t n = read(fd, buf, sizeof buf - 1);
  if (n < 0) { printf("%s: read %s\n", op, strerrorname_np(errno)); close(fd); return; }
  buf[n] = 0;
  char *nl = strchr(buf, '\n');
  if (nl) *nl = 0;
  printf("%s: [%s]\n", op, buf);
  close(fd);
}

int main(int argc, char **argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  for (int i = 1; i < argc; i++) {
    char *op = argv[i];
    char *a = strchr(op, ':');
    char *b = NULL;
    if (a) { *a++ = 0; b = strchr(a, ':'); if (b) *b++ = 0; }
    char label[512];
    snprintf(label, sizeof label, "%s %s%s%s", op, a ? a : "", b ? " " : "", b ? b : "");
    if (!strcmp(op, "cat")) content(label, open(a, O_RDONLY));
    else if (!strcmp(op, "catat")) {
      int dir = open(a, O_RDONLY | O_DIRECTORY);
      content(label, dir < 0 ? dir : openat(dir, b, O_RDONLY));
      if (dir >= 0) close(dir);
    } else if (!strcmp(op, "dirat")) {
      int dir = open(a, O_RDONLY | O_DIRECTORY);
      int fd = dir < 0 ? dir : openat(dir, b, O_RDONLY | O_DIRECTORY);
      result(label, fd);
      if (fd >= 0) close(fd);
      if (dir >= 0) close(dir);
    } else if (!strcmp(op, "openat2")) {
      struct open_how how = {.flags = O_RDONLY};
      content(label, syscall(SYS_openat2, AT_FDCWD, a, &how, sizeof how));
    } else if (!strcmp(op, "stat") || !strcmp(op, "lstat")) {
      struct stat st;
      int r = (op[0] == 's' ? stat : lstat)(a, &st);
      if (r < 0) printf("%s: %s\n", label, strerrorname_np(errno));
      else printf("%s: mode %o size %lld\n", label, st.st_mode, S_ISREG(st.st_mode) ? (long long)st.st_size : 0LL);
    } else if (!strcmp(op, "access")) result(label, access(a, R_OK));
    else if (!strcmp(op, "readlink")) {
      char buf[512];
      ssize_t n = readlink(a, buf, sizeof buf - 1);
      if (n < 0) printf("%s: %s\n", label, strerrorname_np(errno));
      else { buf[n] = 0; printf("%s: %s\n", label, buf); }
    } else if (!strcmp(op, "cwd")) {
      char buf[512];
      if (!getcwd(buf, sizeof buf)) printf("%s: %s\n", label, strerrorname_np(errno));
      else printf("%s: %s\n", label, buf);
    } else if (!strcmp(op, "chdir")) result(label, chdir(a));
    else if (!strcmp(op, "save")) { saved = open(a, O_RDONLY | O_DIRECTORY); result(label, saved); }
    else if (!strcmp(op, "fchdir")) result(label, fchdir(saved));
    else if (!strcmp(op, "mkdir")) result(label, mkdir(a, 0755));
    else if (!strcmp(op, "rmdir")) result(label, rmdir(a));
    else if (!strcmp(op, "unlink")) result(label, unlink(a));
    else if (!strcmp(op, "write")) {
      int fd = open(a, O_WRONLY | O_CREAT | O_TRUNC, 0644);
      if (fd >= 0 && b) { if (write(fd, b, strlen(b)) < 0) fd = -1; }
      result(label, fd);
      if (fd >= 0) close(fd);
    } else if (!strcmp(op, "symlink")) result(label, symlink(a, b));
    else if (!strcmp(op, "link")) result(label, link(a, b));
    else if (!strcmp(op, "rename")) result(label, rename(a, b));
    else if (!strcmp(op, "chmod")) result(label, chmod(a, 0600));
    else if (!strcmp(op, "create")) {
      int fd = open(a, O_CREAT | O_EXCL | O_WRONLY, (mode_t)strtol(b, NULL, 8));
      result(label, fd);
      if (fd >= 0) close(fd);
    }
    else if (!strcmp(op, "truncate")) result(label, truncate(a, 1));
    else if (!strcmp(op, "ppidroot")) {
      char path[600];
      snprintf(path, sizeof path, "/proc/%d/root%s", getppid(), a);
      snprintf(label, sizeof label, "ppidroot %s", a);
      content(label, open(path, O_RDONLY));
    } else if (!strcmp(op, "fchdirfd")) result(label, fchdir(atoi(a)));
    else if (!strcmp(op, "race")) {
      pthread_t thread;
      int rounds = atoi(a), outside = 0, inside = 0;
      pthread_create(&thread, NULL, swapper, NULL);
      for (int n = 0; n < rounds; n++) {
        char buf[64] = {0};
        int fd = open("/race/a/secret", O_RDONLY);
        if (fd < 0) continue;
        if (read(fd, buf, sizeof buf - 1) > 0 && strncmp(buf, "INSIDE", 6) == 0) inside++;
        else outside++;
        close(fd);
      }
      racing = 0;
      pthread_join(thread, NULL);
      printf("%s: inside %s outside %d\n", label, inside > 0 ? "some" : "none", outside);
    } else if (!strcmp(op, "dropcaps")) {
      /* Root without capabilities, as a sandbox runs: the permission bits apply to it. */
      for (int cap = 0; cap <= 63; cap++) prctl(PR_CAPBSET_DROP, cap, 0, 0, 0);
      struct __user_cap_header_struct header = {_LINUX_CAPABILITY_VERSION_3, 0};
      struct __user_cap_data_struct data[2] = {{0, 0, 0}, {0, 0, 0}};
      result(label, syscall(SYS_capset, &header, data));
    } else if (!strcmp(op, "nnp")) {
      /* As every sandbox runs: an exec gains no set-id nor capability. */
      result(label, prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0));
    } else if (!strcmp(op, "ids")) {
      uid_t r, e, s;
      getresuid(&r, &e, &s);
      printf("ids: uid %d euid %d suid %d egid %d\n", (int)r, (int)e, (int)s, (int)getegid());
    } else if (!strcmp(op, "dumpable")) printf("dumpable: %d\n", prctl(PR_GET_DUMPABLE, 0, 0, 0, 0));
    else if (!strcmp(op, "parentmem")) {
      /* A child of the same user opens this process's memory (ptrace_may_access(), kernel/ptrace.c). */
      char path[64];
      snprintf(path, sizeof path, "/proc/%d/mem", (int)getpid());
      pid_t child = fork();
      if (child == 0) { content(label, open(path, O_RDONLY)); _exit(0); }
      waitpid(child, NULL, 0);
    } else if (!strcmp(op, "run")) {
      /* Replaces the probe with a, the operations after it its arguments. */
      argv[i] = a;
      execv(a, argv + i);
      result(label, -1);
      return 0;
    } else if (!strcmp(op, "execfds")) {
      char *args[] = {a, "fds", NULL};
      execv(a, args);
      result(label, -1);
    } else if (!strcmp(op, "fds")) {
      printf("fds:");
      for (int fd = 0; fd < 1024; fd++) if (fcntl(fd, F_GETFD) >= 0) printf(" %d", fd);
      printf("\n");
    } else if (!strcmp(op, "exec") || !strcmp(op, "fexec") || !strcmp(op, "fexeccloexec") ||
               !strcmp(op, "execat")) {
      /* Replaces the probe: the operations after it do not run. */
      char *args[] = {b && !strcmp(op, "execat") ? b : a, op, NULL};
      if (!strcmp(op, "exec")) execv(a, args);
      else if (!strcmp(op, "execat")) syscall(SYS_execveat, open(a, O_RDONLY | O_DIRECTORY), b, args, environ, 0);
      else {
        int fd = open(a, O_RDONLY | (!strcmp(op, "fexec") ? 0 : O_CLOEXEC));
        syscall(SYS_execveat, fd, "", args, environ, AT_EMPTY_PATH);
      }
      result(label, -1);
    } else if (!strcmp(op, "execrace")) {
      /* Executes A (its last name swapped for B by another thread meanwhile),
       * with argv[0] "echo" and "RAN": until an exec succeeds, 500 tries. */
      snprintf(race_path, sizeof race_path, "%s", a);
      race_at = strrchr(race_path, '/') + 1 - race_path;
      snprintf(race_own, sizeof race_own, "%s", race_path + race_at);
      snprintf(race_name, sizeof race_name, "%s", b);
      pthread_t thread;
      pthread_create(&thread, NULL, renamer, NULL);
      char *args[] = {"echo", "RAN", NULL};
      for (int tries = 0; tries < 500; tries++) execv(race_path, args);
      printf("%s: never ran\n", label);
      return 0;
    } else if (!strcmp(op, "fdexec")) {
      /* fexecve by name: PREFIX<fd> (/proc/self/fd/, /dev/fd/), the rest of argv its arguments. */
      char name[64];
      int fd = open(a, O_RDONLY);
      snprintf(name, sizeof name, "%s%d", b, fd);
      argv[i] = a;
      execv(name, argv + i);
      result(label, -1);
      return 0;
    } else printf("%s: unknown\n", label);
  }
  return 0;
}
