/* Opens /dev/tty and tries to push input into it (TIOCSTI), then reads its
 * window size (TIOCGWINSZ, the control: the descriptor is the terminal). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>

int main(void) {
  int fd = open("/dev/tty", O_RDWR);
  if (fd < 0) { printf("open: %s\n", strerrorname_np(errno)); return 1; }
  char byte = 'X';
  if (ioctl(fd, TIOCSTI, &byte) < 0) printf("TIOCSTI: %s\n", strerrorname_np(errno));
  else printf("TIOCSTI: ok\n");
  struct winsize size;
  if (ioctl(fd, TIOCGWINSZ, &size) < 0) printf("TIOCGWINSZ: %s\n", strerrorname_np(errno));
  else printf("TIOCGWINSZ: ok\n");
  return 0;
}
