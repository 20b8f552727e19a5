/* Executes A (argv[1]) with argv "prog RAN" while another thread puts B
 * (argv[2]) at the descriptor number a descriptor injected into this
 * process next gets (the lowest free one), as fast as it can. */
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <unistd.h>

static int swap, target;

static void *swapper(void *unused) {
  (void)unused;
  for (;;)
    if (fcntl(target, F_GETFD) >= 0) dup2(swap, target);
  return NULL;
}

int main(int argc, char **argv) {
  if (argc != 3) return 2;
  swap = open(argv[2], O_RDONLY | O_CLOEXEC);
  if (swap < 0) { perror(argv[2]); return 1; }
  target = swap + 1;
  pthread_t thread;
  pthread_create(&thread, NULL, swapper, NULL);
  char *args[] = {"prog", "RAN", NULL};
  execv(argv[1], args);
  perror(argv[1]);
  return 1;
}
