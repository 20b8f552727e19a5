/* A static probe for the chroot path tests: Unix socket paths, extended
 * attributes, inotify and fanotify marks, file attributes, openat2's
 * RESOLVE_* flags. Each argument is one operation,
 * "op:arg[:arg[:arg]]", and one line per operation is printed, the same
 * under a real chroot(2) and under the emulated one. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/fanotify.h>
#include <linux/openat2.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/xattr.h>
#include <unistd.h>

/* The *xattrat calls (Linux 6.13): the same numbers on every architecture. */
#define NR_setxattrat 463
#define NR_getxattrat 464
#define NR_listxattrat 465
#define NR_removexattrat 466
struct xattr_args { uint64_t value; uint32_t size; uint32_t flags; };
/* file_getattr and file_setattr (Linux 6.17), struct file_attr of linux/fs.h. */
#define NR_file_getattr 468
#define NR_file_setattr 469
struct file_attr { uint64_t fa_xflags; uint32_t fa_extsize, fa_nextents, fa_projid, fa_cowextsize; };

static void fail(const char *label, const char *step) {
  printf("%s: %s %s\n", label, step, strerrorname_np(errno));
}

static socklen_t address(struct sockaddr_un *sun, const char *path, int abstract) {
  memset(sun, 0, sizeof *sun);
  sun->sun_family = AF_UNIX;
  size_t n = strlen(path);
  if (n > sizeof sun->sun_path - 2) n = sizeof sun->sun_path - 2;
  memcpy(sun->sun_path + (abstract ? 1 : 0), path, n);
  return offsetof(struct sockaddr_un, sun_path) + n + 1;
}

/* A server bound at the path, a client that connects to it (or sends to it), one message across. */
static void unixPair(const char *label, const char *path, int type, int abstract, int viaMsg) {
  struct sockaddr_un sun;
  socklen_t len = address(&sun, path, abstract);
  int server = socket(AF_UNIX, type, 0), client = socket(AF_UNIX, type, 0), peer = -1;
  char buf[32] = {0};
  if (bind(server, (struct sockaddr *)&sun, len) < 0) { fail(label, "bind"); goto out; }
  if (type == SOCK_STREAM) {
    if (listen(server, 1) < 0) { fail(label, "listen"); goto out; }
    if (connect(client, (struct sockaddr *)&sun, len) < 0) { fail(label, "connect"); goto out; }
    peer = accept(server, NULL, NULL);
    if (peer < 0) { fail(label, "accept"); goto out; }
    if (write(client, "stream", 6) != 6) { fail(label, "write"); goto out; }
    if (read(peer, buf, sizeof buf - 1) < 0) { fail(label, "read"); goto out; }
  } else if (viaMsg) {
    struct iovec iov = {.iov_base = "message", .iov_len = 7};
    struct msghdr msg = {.msg_name = &sun, .msg_namelen = len, .msg_iov = &iov, .msg_iovlen = 1};
    if (sendmsg(client, &msg, 0) < 0) { fail(label, "sendmsg"); goto out; }
    if (recv(server, buf, sizeof buf - 1, 0) < 0) { fail(label, "recv"); goto out; }
  } else {
    if (sendto(client, "datagram", 8, 0, (struct sockaddr *)&sun, len) < 0) { fail(label, "sendto"); goto out; }
    if (recv(server, buf, sizeof buf - 1, 0) < 0) { fail(label, "recv"); goto out; }
  }
  printf("%s: [%s]\n", label, buf);
out:
  close(server);
  close(client);
  if (peer >= 0) close(peer);
}

static void unixConnect(const char *label, const char *path) {
  struct sockaddr_un sun;
  socklen_t len = address(&sun, path, 0);
  int fd = socket(AF_UNIX, SOCK_STREAM, 0);
  char buf[64] = {0};
  if (connect(fd, (struct sockaddr *)&sun, len) < 0) fail(label, "connect");
  else if (read(fd, buf, sizeof buf - 1) < 0) fail(label, "read");
  else {
    char *nl = strchr(buf, '\n');
    if (nl) *nl = 0;
    printf("%s: [%s]\n", label, buf);
  }
  close(fd);
}

static void status(const char *label, long value) {
  if (value < 0) printf("%s: %s\n", label, strerrorname_np(errno));
  else printf("%s: %ld\n", label, value);
}

static void valued(const char *label, long value, const char *buf) {
  if (value < 0) printf("%s: %s\n", label, strerrorname_np(errno));
  else printf("%s: %ld [%.*s]\n", label, value, (int)value, buf);
}

/* A list of names, NULs shown as commas. */
static void listed(const char *label, long value, char *buf) {
  if (value < 0) { printf("%s: %s\n", label, strerrorname_np(errno)); return; }
  for (long i = 0; i < value; i++) if (buf[i] == 0) buf[i] = ',';
  printf("%s: %ld [%.*s]\n", label, value, (int)value, buf);
}

static unsigned long long resolveFlags(const char *letters) {
  unsigned long long flags = 0;
  for (const char *c = letters; *c; c++) {
    if (*c == 'X') flags |= RESOLVE_NO_XDEV;
    if (*c == 'M') flags |= RESOLVE_NO_MAGICLINKS;
    if (*c == 'S') flags |= RESOLVE_NO_SYMLINKS;
    if (*c == 'B') flags |= RESOLVE_BENEATH;
    if (*c == 'R') flags |= RESOLVE_IN_ROOT;
    if (*c == 'C') flags |= RESOLVE_CACHED;
  }
  return flags;
}

/* One inotify instance per run: its watch descriptors number the same under both roots. */
static int notifier = -1;

/* The events pending on the instance: "wd:mask:name" each, in order. */
static void events(const char *label) {
  char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
  ssize_t n = read(notifier, buf, sizeof buf);
  printf("%s:", label);
  if (n < 0) { printf(" %s\n", strerrorname_np(errno)); return; }
  for (char *p = buf; p < buf + n;) {
    struct inotify_event *event = (struct inotify_event *)p;
    printf(" %d:%x:%s", event->wd, event->mask, event->len ? event->name : "");
    p += sizeof *event + event->len;
  }
  printf("\n");
}

/* One fanotify instance per run (unprivileged: it reports file handles, not descriptors). */
static int fanotifier = -1;

/* The masks of the events pending on the fanotify instance, in order. */
static void fanEvents(const char *label) {
  char buf[4096] __attribute__((aligned(__alignof__(struct fanotify_event_metadata))));
  ssize_t n = read(fanotifier, buf, sizeof buf);
  printf("%s:", label);
  if (n < 0) { printf(" %s\n", strerrorname_np(errno)); return; }
  for (struct fanotify_event_metadata *m = (void *)buf; FAN_EVENT_OK(m, n); m = FAN_EVENT_NEXT(m, n))
    printf(" %llx", (unsigned long long)m->mask);
  printf("\n");
}

int main(int argc, char **argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  for (int i = 1; i < argc; i++) {
    char label[512];
    snprintf(label, sizeof label, "%s", argv[i]);
    char *op = argv[i];
    char *a = strchr(op, ':'), *b = NULL, *c = NULL;
    if (a) { *a++ = 0; b = strchr(a, ':'); }
    if (b) { *b++ = 0; c = strchr(b, ':'); }
    if (c) *c++ = 0;
    char buf[256] = {0};
    if (!strcmp(op, "unix")) unixPair(label, a, SOCK_STREAM, 0, 0);
    else if (!strcmp(op, "dgram")) unixPair(label, a, SOCK_DGRAM, 0, 0);
    else if (!strcmp(op, "dgmsg")) unixPair(label, a, SOCK_DGRAM, 0, 1);
    else if (!strcmp(op, "abstract")) unixPair(label, a, SOCK_STREAM, 1, 0);
    else if (!strcmp(op, "connect")) unixConnect(label, a);
    else if (!strcmp(op, "rm")) status(label, unlink(a));
    else if (!strcmp(op, "chmod")) status(label, chmod(a, 0600));
    else if (!strcmp(op, "getx")) valued(label, getxattr(a, b, buf, sizeof buf), buf);
    else if (!strcmp(op, "lgetx")) valued(label, lgetxattr(a, b, buf, sizeof buf), buf);
    else if (!strcmp(op, "sizex")) status(label, getxattr(a, b, NULL, 0));
    else if (!strcmp(op, "setx")) status(label, setxattr(a, b, c, strlen(c), 0));
    else if (!strcmp(op, "lsetx")) status(label, lsetxattr(a, b, c, strlen(c), 0));
    else if (!strcmp(op, "createx")) status(label, setxattr(a, b, c, strlen(c), XATTR_CREATE));
    else if (!strcmp(op, "listx")) listed(label, listxattr(a, buf, sizeof buf), buf);
    else if (!strcmp(op, "llistx")) listed(label, llistxattr(a, buf, sizeof buf), buf);
    else if (!strcmp(op, "rmx")) status(label, removexattr(a, b));
    else if (!strcmp(op, "lrmx")) status(label, lremovexattr(a, b));
    else if (!strcmp(op, "getxat")) {
      struct xattr_args args = {.value = (uintptr_t)buf, .size = sizeof buf};
      valued(label, syscall(NR_getxattrat, AT_FDCWD, a, 0, b, &args, sizeof args), buf);
    } else if (!strcmp(op, "setxat")) {
      struct xattr_args args = {.value = (uintptr_t)c, .size = strlen(c)};
      status(label, syscall(NR_setxattrat, AT_FDCWD, a, AT_SYMLINK_NOFOLLOW, b, &args, sizeof args));
    } else if (!strcmp(op, "listxat")) {
      listed(label, syscall(NR_listxattrat, AT_FDCWD, a, 0, buf, sizeof buf), buf);
    } else if (!strcmp(op, "rmxat")) {
      status(label, syscall(NR_removexattrat, AT_FDCWD, a, 0, b));
    } else if (!strcmp(op, "watch")) {
      /* watch:PATH:FLAGS, FLAGS letters D (IN_ONLYDIR), N (IN_DONT_FOLLOW), 0 (no event). */
      if (notifier < 0) notifier = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
      uint32_t mask = strchr(b, '0') ? 0 : IN_CREATE | IN_MODIFY | IN_DELETE | IN_ATTRIB;
      if (strchr(b, 'D')) mask |= IN_ONLYDIR;
      if (strchr(b, 'N')) mask |= IN_DONT_FOLLOW;
      status(label, inotify_add_watch(notifier, a, mask));
    } else if (!strcmp(op, "badwatch")) {
      status(label, inotify_add_watch(1, a, IN_CREATE));
    } else if (!strcmp(op, "write")) {
      int fd = open(a, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
      if (fd < 0) { fail(label, "open"); continue; }
      status(label, write(fd, "x", 1));
      close(fd);
    } else if (!strcmp(op, "dropcaps")) {
      /* As the sandbox runs: no capability, whatever the uid. */
      struct __user_cap_header_struct h = {.version = _LINUX_CAPABILITY_VERSION_3};
      struct __user_cap_data_struct d[2] = {0};
      status(label, syscall(SYS_capset, &h, d));
    } else if (!strcmp(op, "fattr")) {
      /* fattr:PATH:FLAGS, FLAGS letters N (AT_SYMLINK_NOFOLLOW), B (an unknown flag), S (a short struct). */
      struct file_attr fa = {0};
      int flags = (strchr(b, 'N') ? AT_SYMLINK_NOFOLLOW : 0) | (strchr(b, 'B') ? 1 : 0);
      long r = syscall(NR_file_getattr, AT_FDCWD, a, &fa, strchr(b, 'S') ? 8 : sizeof fa, flags);
      if (r < 0) printf("%s: %s\n", label, strerrorname_np(errno));
      else printf("%s: %ld [%llx]\n", label, r, (unsigned long long)fa.fa_xflags);
    } else if (!strcmp(op, "fsetattr")) {
      /* fsetattr:PATH:XFLAGS (hex) */
      struct file_attr fa = {.fa_xflags = strtoull(b, NULL, 16)};
      status(label, syscall(NR_file_setattr, AT_FDCWD, a, &fa, sizeof fa, 0));
    } else if (!strcmp(op, "fanotify")) {
      /* fanotify:PATH:FLAGS, FLAGS letters D (FAN_MARK_ONLYDIR), N (FAN_MARK_DONT_FOLLOW),
       * M (FAN_MARK_MOUNT), F (FAN_MARK_FILESYSTEM), R (remove), "-" for none. */
      if (fanotifier < 0)
        fanotifier = syscall(SYS_fanotify_init, FAN_CLASS_NOTIF | FAN_REPORT_FID | FAN_NONBLOCK | FAN_CLOEXEC, O_RDONLY);
      if (fanotifier < 0) { fail(label, "fanotify_init"); continue; }
      unsigned flags = strchr(b, 'R') ? FAN_MARK_REMOVE : FAN_MARK_ADD;
      if (strchr(b, 'D')) flags |= FAN_MARK_ONLYDIR;
      if (strchr(b, 'N')) flags |= FAN_MARK_DONT_FOLLOW;
      if (strchr(b, 'M')) flags |= FAN_MARK_MOUNT;
      if (strchr(b, 'F')) flags |= FAN_MARK_FILESYSTEM;
      status(label, syscall(SYS_fanotify_mark, fanotifier, flags, FAN_MODIFY | FAN_CREATE | FAN_ATTRIB | FAN_ONDIR | FAN_EVENT_ON_CHILD, AT_FDCWD, a));
    } else if (!strcmp(op, "badfan")) {
      /* badfan:PATH:FD, a descriptor that is no fanotify instance. */
      status(label, syscall(SYS_fanotify_mark, atoi(b), FAN_MARK_ADD, FAN_MODIFY, AT_FDCWD, a));
    } else if (!strcmp(op, "fanevents")) {
      fanEvents(label);
    } else if (!strcmp(op, "utime")) {
      /* The old time calls by their numbers (glibc makes utimensat of them);
         aarch64 has none of the three (asm-generic/unistd.h). */
#ifdef SYS_utime
      struct { long actime, modtime; } t = {atol(b), atol(b)};
      status(label, syscall(SYS_utime, a, &t));
#else
      printf("%s: no such call\n", label);
#endif
    } else if (!strcmp(op, "utimes")) {
#ifdef SYS_utimes
      struct timeval t[2] = {{atol(b), atol(c)}, {atol(b), atol(c)}};
      status(label, syscall(SYS_utimes, a, t));
#else
      printf("%s: no such call\n", label);
#endif
    } else if (!strcmp(op, "futimesat")) {
#ifdef SYS_futimesat
      struct timeval t[2] = {{atol(b), 0}, {atol(b), 0}};
      status(label, syscall(SYS_futimesat, AT_FDCWD, a, t));
#else
      printf("%s: no such call\n", label);
#endif
    } else if (!strcmp(op, "mtime")) {
      struct stat st;
      if (stat(a, &st) < 0) fail(label, "stat");
      else printf("%s: %ld.%09ld\n", label, (long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
    } else if (!strcmp(op, "events")) {
      events(label);
    } else if (!strcmp(op, "uselib")) {
#ifdef SYS_uselib
      status(label, syscall(SYS_uselib, a));
#else
      printf("%s: no such call\n", label);
#endif
    } else if (!strcmp(op, "res")) {
      /* res:FLAGS:DIR:PATH, DIR "-" for the cwd; FLAGS letters X M S B R C, or "0". */
      int dir = strcmp(b, "-") ? open(b, O_RDONLY | O_DIRECTORY) : AT_FDCWD;
      if (dir == -1) { fail(label, "dir"); continue; }
      struct open_how how = {.flags = O_RDONLY, .resolve = resolveFlags(a)};
      int fd = syscall(SYS_openat2, dir, c, &how, sizeof how);
      if (fd < 0) printf("%s: %s\n", label, strerrorname_np(errno));
      else {
        ssize_t n = read(fd, buf, sizeof buf - 1);
        if (n < 0) printf("%s: read %s\n", label, strerrorname_np(errno));
        else {
          buf[n] = 0;
          char *nl = strchr(buf, '\n');
          if (nl) *nl = 0;
          printf("%s: [%s]\n", label, buf);
        }
        close(fd);
      }
      if (dir >= 0) close(dir);
    } else printf("%s: unknown\n", label);
  }
  return 0;
}
