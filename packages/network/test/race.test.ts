// A thread rewrites the destination while another sends: the datagram that
// leaves must be the one that was checked.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { Sandbox, SYSTEM_READ, type UdpServer, udpServer, until } from './helpers.js';

const RACER = String.raw`
#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

static struct sockaddr_in target;
static struct sockaddr_in good, bad;
static struct msghdr header;
static volatile int stop;
static unsigned short ok_port, bad_port;

/* Flips the sockaddr's port and the msghdr's name between the allowed and the denied. */
static void *flip(void *unused) {
  (void)unused;
  while (!stop) {
    /* The barriers keep the compiler from merging the stores or moving them past the loop. */
    target.sin_port = htons(bad_port);
    header.msg_name = &bad;
    __asm__ volatile("" ::: "memory");
    target.sin_port = htons(ok_port);
    header.msg_name = &good;
    __asm__ volatile("" ::: "memory");
  }
  return NULL;
}

int main(int argc, char **argv) {
  ok_port = atoi(argv[1]);
  bad_port = atoi(argv[2]);
  int rounds = atoi(argv[3]);
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  memset(&target, 0, sizeof target);
  target.sin_family = AF_INET;
  target.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  good = target;
  good.sin_port = htons(ok_port);
  bad = target;
  bad.sin_port = htons(bad_port);
  struct iovec iov = {"race", 4};
  header.msg_name = &good;
  header.msg_namelen = sizeof good;
  header.msg_iov = &iov;
  header.msg_iovlen = 1;
  pthread_t thread;
  pthread_create(&thread, NULL, flip, NULL);
  int sent = 0, refused = 0, other = 0;
  for (int i = 0; i < rounds; i++) {
    int result = (i & 1) ? sendmsg(fd, &header, 0)
                         : sendto(fd, "race", 4, 0, (struct sockaddr *)&target, sizeof target);
    if (result == 4) sent++;
    else if (errno == EACCES) refused++;
    else {
      if (!other) fprintf(stderr, "errno %d on %s\n", errno, (i & 1) ? "sendmsg" : "sendto");
      other++;
    }
  }
  stop = 1;
  pthread_join(thread, NULL);
  printf("%d %d %d\n", sent, refused, other);
  return 0;
}
`;

let work: string;
let racer: string;
let allowed: UdpServer;
let denied: UdpServer;

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'sandlock-race-'));
  writeFileSync(join(work, 'racer.c'), RACER);
  racer = join(work, 'racer');
  execFileSync('gcc', ['-O2', '-pthread', '-o', racer, join(work, 'racer.c')]);
  [allowed, denied] = await Promise.all([udpServer(), udpServer()]);
});
afterAll(async () => {
  await Promise.all([allowed.close(), denied.close()]);
  rmSync(work, { recursive: true, force: true });
});

it('sends only checked destinations while a thread rewrites them', async () => {
  const rounds = 4000;
  const result = await Sandbox.builder()
    .fsRead(...SYSTEM_READ, work)
    .netAllow(`udp://127.0.0.1:${allowed.port}`)
    .build()
    .run([racer, String(allowed.port), String(denied.port), String(rounds)], {
      encoding: 'utf8',
      timeout: 120_000,
    });
  expect(result.stderr).toBe('');
  const [sent, refused, other] = result.stdout.trim().split(' ').map(Number) as [
    number,
    number,
    number,
  ];
  expect(sent + refused + other).toBe(rounds);
  expect(other).toBe(0);
  // Both outcomes happened: the racer did change the destination under the calls.
  expect(sent).toBeGreaterThan(0);
  expect(refused).toBeGreaterThan(0);
  // Loopback may drop a datagram when the server's queue is full, never add one.
  await until(() => allowed.received.length > 0);
  await new Promise((resolve) => setTimeout(resolve, 200));
  expect(allowed.received.length).toBeLessThanOrEqual(sent);
  expect(denied.received.length).toBe(0);
});
