// Threads that change what a connect or a send is about between the check
// and the kernel's use: the address (a sockaddr flipped between an allowed
// and a denied port), or the socket itself (a UDP socket dup2-ed over the
// number of a TCP one). What reaches the denied server must be nothing.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { Sandbox, SYSTEM_READ, type UdpServer, udpServer } from './helpers.js';

const RACER = String.raw`
#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static struct sockaddr_in target, udp_bad;
static volatile int stop;
static unsigned short ok_port, bad_port;
static int tcp, udp, slot;

/*
 * Flips the connect's address between 127.0.0.1 (allowed) and 127.0.0.2
 * (denied), the same port: a rule about an address, not a port, which
 * Landlock cannot say.
 */
static void *flip(void *unused) {
  (void)unused;
  while (!stop) {
    target.sin_addr.s_addr = htonl(INADDR_LOOPBACK + 1);
    __asm__ volatile("" ::: "memory");
    target.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    __asm__ volatile("" ::: "memory");
  }
  return NULL;
}

/* Puts the UDP socket, then the TCP one, at the number the calls use. */
static void *swap(void *unused) {
  (void)unused;
  while (!stop) {
    dup2(udp, slot);
    dup2(tcp, slot);
  }
  return NULL;
}

static struct sockaddr_in loopback(unsigned short port) {
  struct sockaddr_in address;
  memset(&address, 0, sizeof address);
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = htons(port);
  return address;
}

int main(int argc, char **argv) {
  const char *mode = argv[1];
  ok_port = atoi(argv[2]);
  bad_port = atoi(argv[3]);
  int rounds = atoi(argv[4]);
  int done = 0, refused = 0;
  pthread_t thread;
  if (strcmp(mode, "flip") == 0) {
    target = loopback(ok_port);
    pthread_create(&thread, NULL, flip, NULL);
    for (int i = 0; i < rounds; i++) {
      int fd = socket(AF_INET, SOCK_STREAM, 0);
      if (connect(fd, (struct sockaddr *)&target, sizeof target) == 0) done++;
      else if (errno == EACCES) refused++;
      else fprintf(stderr, "errno %d\n", errno);
      close(fd);
    }
  } else {
    /* bad_port is a UDP server the rules deny; ok_port one they allow. */
    tcp = socket(AF_INET, SOCK_STREAM, 0);
    udp = socket(AF_INET, SOCK_DGRAM, 0);
    slot = dup(tcp);
    udp_bad = loopback(bad_port);
    struct iovec iov = {"race", 4};
    struct msghdr header;
    memset(&header, 0, sizeof header);
    header.msg_name = &udp_bad;
    header.msg_namelen = sizeof udp_bad;
    header.msg_iov = &iov;
    header.msg_iovlen = 1;
    pthread_create(&thread, NULL, swap, NULL);
    for (int i = 0; i < rounds; i++) {
      int result;
      switch (i % 3) {
      case 0:
        result = sendto(slot, "race", 4, MSG_NOSIGNAL, (struct sockaddr *)&udp_bad, sizeof udp_bad);
        break;
      case 1:
        result = sendmsg(slot, &header, MSG_NOSIGNAL);
        break;
      default:
        /* A datagram connect to the denied server, then a send (not notified). */
        result = connect(slot, (struct sockaddr *)&udp_bad, sizeof udp_bad);
        if (result == 0) send(slot, "race", 4, MSG_NOSIGNAL);
        break;
      }
      if (result >= 0) done++;
      else if (errno == EACCES) refused++;
    }
  }
  stop = 1;
  pthread_join(thread, NULL);
  printf("%d %d\n", done, refused);
  return 0;
}
`;

let work: string;
let racer: string;

interface Listener {
  readonly port: number;
  connections: number;
  close(): Promise<void>;
}

async function listener(host = '127.0.0.1', port = 0): Promise<Listener> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    counted.connections++;
    sockets.add(socket);
    socket.on('error', () => {});
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(port, host, 4096, resolve));
  const counted: Listener = {
    port: (server.address() as { port: number }).port,
    connections: 0,
    close: () =>
      new Promise((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
  return counted;
}

beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'sandlock-connect-race-'));
  writeFileSync(join(work, 'racer.c'), RACER);
  racer = join(work, 'racer');
  execFileSync('gcc', ['-O2', '-pthread', '-o', racer, join(work, 'racer.c')]);
});
afterAll(() => {
  rmSync(work, { recursive: true, force: true });
});

async function race(mode: string, ok: number, bad: number, rounds: number, rules: string[]) {
  const result = await Sandbox.builder()
    .fsRead(...SYSTEM_READ, work)
    .netAllow(...rules)
    .build()
    .run([racer, mode, String(ok), String(bad), String(rounds)], {
      encoding: 'utf8',
      timeout: 180_000,
    });
  expect(result.stderr).toBe('');
  const [done, refused] = result.stdout.trim().split(' ').map(Number) as [number, number];
  return { done, refused };
}

it('a TCP connect whose address another thread flips reaches only the allowed listener', async () => {
  const ok = await listener();
  const bad = await listener('127.0.0.2', ok.port);
  try {
    const rounds = 1500;
    const { done, refused } = await race('flip', ok.port, ok.port, rounds, ['tcp://127.0.0.1']);
    expect(done + refused).toBe(rounds);
    // Both outcomes happened: the flipper did change the address under the calls.
    expect(done).toBeGreaterThan(0);
    expect(refused).toBeGreaterThan(0);
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(bad.connections).toBe(0);
  } finally {
    await Promise.all([ok.close(), bad.close()]);
  }
}, 240_000);

it('a UDP socket dup2-ed over a TCP one sends nothing unchecked', async () => {
  let allowed: UdpServer | undefined;
  let denied: UdpServer | undefined;
  try {
    [allowed, denied] = await Promise.all([udpServer(), udpServer()]);
    const rounds = 3000;
    const { refused } = await race('dup2', allowed.port, denied.port, rounds, [
      `udp://127.0.0.1:${allowed.port}`,
      'tcp://127.0.0.1',
    ]);
    // The UDP socket was at the number for some of the calls.
    expect(refused).toBeGreaterThan(0);
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(denied.received.length).toBe(0);
  } finally {
    await Promise.all([allowed?.close(), denied?.close()]);
  }
}, 240_000);
