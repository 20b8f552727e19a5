/* execrace PROG ROUNDS: ROUNDS times, a child whose second thread reads every
 * descriptor it did not open while its first thread execs PROG; prints how
 * many children ran PROG (exit 0) and how many saw an ELF header. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static int report;

static void *reader(void *unused) {
  (void)unused;
  char head[4];
  for (;;)
    for (int fd = 3; fd < 64; fd++) {
      if (fd == report) continue;
      if (pread(fd, head, 4, 0) == 4 && !memcmp(head, "\177ELF", 4)) write(report, "L", 1);
    }
  return NULL;
}

int main(int argc, char **argv) {
  int rounds = atoi(argv[2]), ran = 0, leaks = 0;
  for (int i = 0; i < rounds; i++) {
    int ends[2];
    if (pipe(ends) < 0) return 1;
    pid_t pid = fork();
    if (pid == 0) {
      close(ends[0]);
      report = ends[1];
      pthread_t thread;
      pthread_create(&thread, NULL, reader, NULL);
      usleep(100);
      execl(argv[1], argv[1], (char *)NULL);
      _exit(127);
    }
    close(ends[1]);
    char byte;
    int seen = 0;
    while (read(ends[0], &byte, 1) > 0) seen = 1;
    close(ends[0]);
    int status;
    waitpid(pid, &status, 0);
    leaks += seen;
    ran += WIFEXITED(status) && WEXITSTATUS(status) == 0;
  }
  printf("ran %d leaks %d\n", ran, leaks);
  return 0;
}
