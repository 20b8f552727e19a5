// connect is answered on the main thread once options.gate/release exists (at
// most options.delayMs later), by doing the connect on behalf of the caller on
// a duplicate of its socket, with the sockaddr copied in the worker; while it
// waits, options.gate/pending exists. openat is seen and let through.
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { AF_INET, AF_INET6 } from '@sandlock/sys';
import { answer, defineModule } from '../../../src/index.js';

let delayMs = 1000;
let gate = '';

export default defineModule<{ delayMs: number; gate: string }>({
  name: 'slow-connect',
  syscalls: ['connect', 'openat'],
  setup(options) {
    delayMs = options.delayMs;
    gate = options.gate;
  },
  handlers: {
    connect(ctx) {
      const { fd, addr, addrlen } = ctx.argsOf('connect');
      // The decision and the on-behalf call use this copy, never the
      // caller's memory, which another thread could change meanwhile.
      const copy = ctx.read(addr, Math.min(addrlen, 128));
      // Only TCP/IP is delayed (libc also connects to unix sockets, nscd's).
      const family = copy.length >= 2 ? copy.readUInt16LE(0) : 0;
      if (family !== AF_INET && family !== AF_INET6) return answer.continue();
      return answer.defer({ fd, addr: new Uint8Array(copy) });
    },
    openat: () => answer.continue(),
  },
  deferred: {
    async connect(ctx) {
      const { fd, addr } = ctx.payload as { fd: number; addr: Uint8Array };
      writeFileSync(join(gate, 'pending'), '');
      for (let waited = 0; waited < delayMs && !existsSync(join(gate, 'release')); waited += 10) {
        await sleep(10);
      }
      const address = Buffer.from(addr);
      return answer.fromResult(await ctx.onBehalfAsync(fd, 'connect', address, address.length));
    },
  },
});
