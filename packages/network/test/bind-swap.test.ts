// A thread dup2-s a UDP socket over the number of a Unix socket while
// another binds that number to an AF_INET address of a port no rule allows:
// a bind checked as a Unix one and left to the kernel (`continue`) would
// bind the UDP socket the kernel finds there instead, outside the bind rules.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { Sandbox, SYSTEM_READ } from './helpers.js';

const RACER = String.raw`
#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static atomic_int udp = -1, unix_socket = -1;
static atomic_int stop;
static const int slot = 100;

/* Puts the round's Unix socket, then its UDP one, at the number the bind uses. */
static void *swap(void *unused) {
  (void)unused;
  while (!atomic_load(&stop)) {
    dup2(atomic_load(&unix_socket), slot);
    dup2(atomic_load(&udp), slot);
  }
  return NULL;
}

int main(int argc, char **argv) {
  unsigned short port = atoi(argv[1]);
  int rounds = atoi(argv[2]);
  struct sockaddr_in address;
  memset(&address, 0, sizeof address);
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = htons(port);
  atomic_store(&udp, socket(AF_INET, SOCK_DGRAM, 0));
  atomic_store(&unix_socket, socket(AF_UNIX, SOCK_DGRAM, 0));
  /* The number exists before the first bind, however late the thread starts. */
  dup2(atomic_load(&unix_socket), slot);
  pthread_t thread;
  pthread_create(&thread, NULL, swap, NULL);
  int escaped = 0, refused = 0, invalid = 0, other = 0;
  for (int i = 0; i < rounds; i++) {
    if (bind(slot, (struct sockaddr *)&address, sizeof address) == 0) {
      struct sockaddr_in name;
      socklen_t length = sizeof name;
      getsockname(atomic_load(&udp), (struct sockaddr *)&name, &length);
      if (ntohs(name.sin_port) == port) escaped++;
      else other++;
      /* A fresh UDP socket for the next round: this one is bound. */
      int fresh = socket(AF_INET, SOCK_DGRAM, 0);
      int old = atomic_exchange(&udp, fresh);
      close(old);
    } else if (errno == EACCES) refused++;
    else if (errno == EINVAL) invalid++; /* unix_validate_addr(): not AF_UNIX */
    else {
      if (!other) fprintf(stderr, "errno %d\n", errno);
      other++;
    }
  }
  atomic_store(&stop, 1);
  pthread_join(thread, NULL);
  printf("%d %d %d %d\n", escaped, refused, invalid, other);
  return 0;
}
`;

let work: string;
let racer: string;

beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'sandlock-bind-swap-'));
  writeFileSync(join(work, 'racer.c'), RACER);
  racer = join(work, 'racer');
  execFileSync('gcc', ['-O2', '-pthread', '-o', racer, join(work, 'racer.c')]);
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

it('never binds a UDP socket dup2-ed over a Unix one during the bind', async () => {
  const rounds = 3000;
  // A UDP rule lets UDP sockets exist; no bind rule allows any port.
  const result = await Sandbox.builder()
    .fsRead(...SYSTEM_READ, work)
    .netAllow('udp://127.0.0.1:9')
    .build()
    .run([racer, '47391', String(rounds)], { encoding: 'utf8', timeout: 120_000 });
  expect(result.stderr).toBe('');
  const [escaped, refused, invalid, other] = result.stdout.trim().split(' ').map(Number);
  expect(escaped! + refused! + invalid! + other!).toBe(rounds);
  expect(escaped).toBe(0);
  expect(other).toBe(0);
  // Both sockets were found at the number: the swap did happen under the binds.
  expect(refused).toBeGreaterThan(0);
  expect(invalid).toBeGreaterThan(0);
});
