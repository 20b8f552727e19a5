/* A static probe that narrows itself with Landlock, as a program confining
 * its plug-ins would, then tries calls inside and outside what it kept. Each
 * argument is one operation, "op:arg[:arg]"; one line per operation:
 *   landlock:R:W   from here on, R and beneath may be read and executed, W
 *                  and beneath anything; every other file-system right is
 *                  handled (refused) elsewhere
 *   landlockfile:F from here on, the file F may be read (not its directory
 *                  listed), nothing else
 *   race:F:N       a thread tries getdents64 and openat(fd, "..") on every
 *                  descriptor number while this one reads F N times; prints
 *                  the reads that worked, the directories the thread listed
 *                  and the ones its ".." reached outside the tree's four
 *                  directories, then the children it could wait for
 *                  (__WALL) and the SIGCHLDs it got
 *   pidfdgetfd     pidfd_getfd of its own descriptor 0
 *   cat:P  ls:P  write:P (O_CREAT)  mkdir:P  unlink:P  truncate:P
 *   rename:A:B  link:A:B
 *   exec:P         a child execs P with the one op "true"
 *   append:P       opens P (which exists) for writing, appends a line
 *   fdflags:P      opens P without O_CLOEXEC, prints its descriptor flags
 *   thread         starts a thread that waits forever
 *   orphan         the operations after it run in a grandchild whose parent
 *                  has exited (reparented to the sandbox's reaper)
 *   fork           the operations after it run in a child (the parent
 *                  waits for every child it gets)
 *   cloneparent    the operations after it run in a sibling made with
 *                  clone(CLONE_PARENT), or in the caller if that failed
 *   true           exits 0 */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <fcntl.h>
#include <linux/landlock.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <stdatomic.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

/* Landlock ABI 3 (Linux 6.2); Debian 12's headers are older. */
#ifndef LANDLOCK_ACCESS_FS_TRUNCATE
#define LANDLOCK_ACCESS_FS_TRUNCATE (1ULL << 14)
#endif

#define READ (LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_READ_DIR | LANDLOCK_ACCESS_FS_EXECUTE)
#define ALL                                                                                        \
  (READ | LANDLOCK_ACCESS_FS_WRITE_FILE | LANDLOCK_ACCESS_FS_REMOVE_DIR |                          \
   LANDLOCK_ACCESS_FS_REMOVE_FILE | LANDLOCK_ACCESS_FS_MAKE_CHAR | LANDLOCK_ACCESS_FS_MAKE_DIR |   \
   LANDLOCK_ACCESS_FS_MAKE_REG | LANDLOCK_ACCESS_FS_MAKE_SOCK | LANDLOCK_ACCESS_FS_MAKE_FIFO |     \
   LANDLOCK_ACCESS_FS_MAKE_BLOCK | LANDLOCK_ACCESS_FS_MAKE_SYM | LANDLOCK_ACCESS_FS_REFER |        \
   LANDLOCK_ACCESS_FS_TRUNCATE)

static void result(const char *op, long value) {
  if (value < 0) printf("%s: %s\n", op, strerrorname_np(errno));
  else printf("%s: ok\n", op);
}

static int allow(int ruleset, const char *path, __u64 rights) {
  struct landlock_path_beneath_attr rule = {.allowed_access = rights};
  rule.parent_fd = open(path, O_PATH | O_CLOEXEC);
  if (rule.parent_fd < 0) return -1;
  int done = syscall(SYS_landlock_add_rule, ruleset, LANDLOCK_RULE_PATH_BENEATH, &rule, 0);
  close(rule.parent_fd);
  return done;
}

static long narrow(const char *read, const char *write) {
  struct landlock_ruleset_attr attr = {.handled_access_fs = ALL};
  int ruleset = syscall(SYS_landlock_create_ruleset, &attr, sizeof attr, 0);
  if (ruleset < 0) return -1;
  if (allow(ruleset, read, READ) < 0 || allow(ruleset, write, ALL) < 0) return -1;
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) return -1;
  long done = syscall(SYS_landlock_restrict_self, ruleset, 0);
  close(ruleset);
  return done;
}

static long cat(const char *path);

static long narrow_to_file(const char *file) {
  struct landlock_ruleset_attr attr = {.handled_access_fs = ALL};
  int ruleset = syscall(SYS_landlock_create_ruleset, &attr, sizeof attr, 0);
  if (ruleset < 0) return -1;
  if (allow(ruleset, file, LANDLOCK_ACCESS_FS_READ_FILE) < 0) return -1;
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) return -1;
  long done = syscall(SYS_landlock_restrict_self, ruleset, 0);
  close(ruleset);
  return done;
}

/* The tree's directories (its root, ro, rw, other), found before the race. */
static struct stat tree[4];
static atomic_int racing;
static long listed, escaped;
static volatile sig_atomic_t sigchld;

static void on_sigchld(int signal) {
  (void)signal;
  sigchld++;
}

static int in_tree(const struct stat *st) {
  for (int i = 0; i < 4; i++)
    if (tree[i].st_dev == st->st_dev && tree[i].st_ino == st->st_ino) return 1;
  return 0;
}

static void *racer(void *unused) {
  (void)unused;
  char buf[4096];
  while (atomic_load(&racing)) {
    for (int fd = 0; fd < 64; fd++)
      if (syscall(SYS_getdents64, fd, buf, sizeof buf) > 0) listed++;
    for (int fd = 0; fd < 64; fd++) {
      int up = openat(fd, "..", O_PATH | O_DIRECTORY | O_CLOEXEC);
      if (up < 0) continue;
      struct stat st;
      if (fstat(up, &st) == 0 && !in_tree(&st)) escaped++;
      close(up);
    }
  }
  return NULL;
}

static void race(const char *label, const char *path, int times) {
  const char *dirs[] = {"/", "/ro", "/rw", "/other"};
  for (int i = 0; i < 4; i++)
    if (stat(dirs[i], &tree[i]) < 0) {
      result(label, -1);
      return;
    }
  pthread_t thread;
  listed = escaped = 0;
  sigchld = 0;
  signal(SIGCHLD, on_sigchld);
  atomic_store(&racing, 1);
  if ((errno = pthread_create(&thread, NULL, racer, NULL))) {
    result(label, -1);
    return;
  }
  int opened = 0;
  for (int i = 0; i < times; i++)
    if (cat(path) >= 0) opened++;
  atomic_store(&racing, 0);
  pthread_join(thread, NULL);
  int children = 0;
  while (waitpid(-1, NULL, WNOHANG | __WALL) > 0) children++;
  signal(SIGCHLD, SIG_DFL);
  printf("%s: %d read, %ld listed, %ld escaped, %d children, %d SIGCHLD\n", label, opened, listed,
         escaped, children, (int)sigchld);
}

static long cat(const char *path) {
  char buf[64];
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  long n = read(fd, buf, sizeof buf);
  close(fd);
  return n;
}

static long create(const char *path) {
  int fd = open(path, O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
  if (fd < 0) return -1;
  long n = write(fd, "new\n", 4);
  close(fd);
  return n;
}

static long run(const char *path) {
  pid_t child = fork();
  if (child < 0) return -1;
  if (child == 0) {
    char *args[] = {(char *)path, "true", NULL};
    execv(path, args);
    _exit(100 + errno);
  }
  int status = 0;
  if (waitpid(child, &status, 0) < 0) return -1;
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return 0;
  errno = WIFEXITED(status) && WEXITSTATUS(status) > 100 ? WEXITSTATUS(status) - 100 : ECHILD;
  return -1;
}

static long append(const char *path) {
  int fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
  if (fd < 0) return -1;
  long n = write(fd, "more\n", 5);
  close(fd);
  return n;
}

static void *waiting(void *unused) {
  (void)unused;
  for (;;) pause();
  return NULL;
}

/* In the top process: waits for the orphaned grandchild (its end of the pipe closes) and returns 1. */
static int orphan(void) {
  int ends[2];
  if (pipe(ends) < 0) return -1;
  pid_t middle = fork();
  if (middle < 0) return -1;
  if (middle == 0) {
    pid_t me = getpid();
    if (fork() != 0) _exit(0);
    close(ends[0]);
    while (getppid() == me) usleep(1000);
    printf("orphan: ok\n");
    return 0;
  }
  close(ends[1]);
  waitpid(middle, NULL, 0);
  char byte;
  while (read(ends[0], &byte, 1) > 0) continue;
  return 1;
}

/* fork: in the parent, waits for every child and returns 1; 0 in the child. */
static int forked(void) {
  pid_t child = fork();
  if (child < 0) return -1;
  if (child == 0) return 0;
  while (wait(NULL) > 0) continue;
  return 1;
}

/* cloneparent: 1 in the caller, 0 in the sibling it made (or in the caller, refused). */
static int sibling(void) {
  long child = syscall(SYS_clone, CLONE_PARENT | SIGCHLD, 0, 0, 0, 0);
  if (child < 0) {
    result("cloneparent", -1);
    return 0;
  }
  if (child == 0) {
    printf("cloneparent: ok\n");
    return 0;
  }
  return 1;
}

int main(int argc, char **argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  for (int i = 1; i < argc; i++) {
    char *op = argv[i];
    char *a = strchr(op, ':');
    char *b = NULL;
    if (a) {
      *a++ = 0;
      b = strchr(a, ':');
      if (b) *b++ = 0;
    }
    char label[512];
    snprintf(label, sizeof label, "%s %s%s%s", op, a ? a : "", b ? " " : "", b ? b : "");
    if (!strcmp(op, "true")) return 0;
    else if (!strcmp(op, "landlock")) result(label, narrow(a, b));
    else if (!strcmp(op, "landlockfile")) result(label, narrow_to_file(a));
    else if (!strcmp(op, "race")) race(label, a, atoi(b));
    else if (!strcmp(op, "pidfdgetfd")) {
      int pidfd = syscall(SYS_pidfd_open, getpid(), 0);
      long fd = pidfd < 0 ? -1 : syscall(SYS_pidfd_getfd, pidfd, 0, 0);
      result(label, fd);
    }
    else if (!strcmp(op, "cat")) result(label, cat(a));
    else if (!strcmp(op, "ls")) {
      int fd = open(a, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      result(label, fd);
      if (fd >= 0) close(fd);
    } else if (!strcmp(op, "write")) result(label, create(a));
    else if (!strcmp(op, "mkdir")) result(label, mkdir(a, 0755));
    else if (!strcmp(op, "unlink")) result(label, unlink(a));
    else if (!strcmp(op, "truncate")) result(label, truncate(a, 1));
    else if (!strcmp(op, "rename")) result(label, rename(a, b));
    else if (!strcmp(op, "link")) result(label, link(a, b));
    else if (!strcmp(op, "exec")) result(label, run(a));
    else if (!strcmp(op, "append")) result(label, append(a));
    else if (!strcmp(op, "fdflags")) {
      int fd = open(a, O_RDONLY);
      if (fd < 0) result(label, fd);
      else {
        printf("%s: fd flags %d\n", label, fcntl(fd, F_GETFD));
        close(fd);
      }
    } else if (!strcmp(op, "thread")) {
      pthread_t thread;
      errno = pthread_create(&thread, NULL, waiting, NULL);
      result(label, errno ? -1 : 0);
    } else if (!strcmp(op, "fork") || !strcmp(op, "cloneparent")) {
      int parent = !strcmp(op, "fork") ? forked() : sibling();
      if (parent != 0) return parent < 0 ? 1 : 0;
    } else if (!strcmp(op, "orphan")) {
      int top = orphan();
      if (top != 0) return top < 0 ? 1 : 0;
    } else printf("%s: unknown\n", label);
  }
  return 0;
}
