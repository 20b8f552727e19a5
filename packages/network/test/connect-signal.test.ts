// A blocking TCP connect that waits (its SYN dropped: the listener's accept
// queue is full) when a caught signal comes: signal(7) says connect is
// restarted after a handler with SA_RESTART unless the socket has a send
// timeout; otherwise it fails with EINTR. The same program through the
// supervisor (a connect it waits for on the main thread) and alone.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { bothWays } from './differential.js';
import { SYSTEM_READ } from './helpers.js';

const PROGRAM = String.raw`
#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t handled;
static int server;
static pthread_t caller;

static void on_signal(int signal) { (void)signal; handled++; }

static void pause_ms(long ms) {
  struct timespec time = {ms / 1000, (ms % 1000) * 1000000L};
  while (nanosleep(&time, &time) != 0) {}
}

/* Signals the caller while its connect waits, then makes room in the queue. */
static void *interrupt(void *unused) {
  (void)unused;
  pause_ms(300);
  pthread_kill(caller, SIGUSR1);
  pause_ms(200);
  close(accept(server, NULL, NULL));
  return NULL;
}

static const char *attempt(const char *mode) {
  struct sigaction action;
  memset(&action, 0, sizeof action);
  action.sa_handler = on_signal;
  action.sa_flags = strcmp(mode, "no-restart") == 0 ? 0 : SA_RESTART;
  sigaction(SIGUSR1, &action, NULL);
  struct sockaddr_in address;
  memset(&address, 0, sizeof address);
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof address;
  server = socket(AF_INET, SOCK_STREAM, 0);
  if (bind(server, (struct sockaddr *)&address, length) != 0) return "bind";
  listen(server, 0);
  getsockname(server, (struct sockaddr *)&address, &length);
  /* Backlog 0 holds one connection: the next SYN is dropped until it is accepted. */
  int first = socket(AF_INET, SOCK_STREAM, 0);
  if (connect(first, (struct sockaddr *)&address, length) != 0) return "first";
  int second = socket(AF_INET, SOCK_STREAM, 0);
  if (strcmp(mode, "timeout") == 0) {
    struct timeval timeout = {20, 0};
    setsockopt(second, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
  }
  handled = 0;
  caller = pthread_self();
  pthread_t thread;
  pthread_create(&thread, NULL, interrupt, NULL);
  int result = connect(second, (struct sockaddr *)&address, length);
  int error = errno;
  pthread_join(thread, NULL);
  close(first);
  close(second);
  close(server);
  if (handled != 1) return "not handled";
  return result == 0 ? "connected" : error == EINTR ? "EINTR" : strerror(error);
}

int main(void) {
  printf("{\"restart\": \"%s\",", attempt("restart"));
  printf(" \"no-restart\": \"%s\",", attempt("no-restart"));
  printf(" \"timeout\": \"%s\"}\n", attempt("timeout"));
  return 0;
}
`;

let work: string;
let program: string;

beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'sandlock-connect-signal-'));
  writeFileSync(join(work, 'program.c'), PROGRAM);
  program = join(work, 'program');
  execFileSync('gcc', ['-O2', '-pthread', '-o', program, join(work, 'program.c')]);
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

it('restarts a waiting connect after an SA_RESTART handler, as the kernel does', async () => {
  const policy = {
    fsRead: [...SYSTEM_READ, work],
    netBind: [0],
    netConnect: [{ from: 1, to: 65535 }],
  };
  const { supervised, alone } = await bothWays(
    [program],
    { ...policy, netAllow: ['tcp://127.0.0.1'] },
    policy,
  );
  expect(alone).toEqual({ restart: 'connected', 'no-restart': 'EINTR', timeout: 'EINTR' });
  expect(supervised).toEqual(alone);
});
