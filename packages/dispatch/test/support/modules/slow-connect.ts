// connect is answered on the main thread after options.delayMs, by doing the
// connect on behalf of the caller on a duplicate of its socket, with the
// sockaddr copied in the worker. openat is seen and let through.
import { setTimeout as sleep } from 'node:timers/promises';
import { AF_INET, AF_INET6 } from '@sandlock/sys';
import { answer, defineModule } from '../../../src/index.js';

let delayMs = 1000;

export default defineModule<{ delayMs: number }>({
  name: 'slow-connect',
  syscalls: ['connect', 'openat'],
  setup(options) {
    delayMs = options.delayMs;
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
      await sleep(delayMs);
      const address = Buffer.from(addr);
      return answer.fromResult(await ctx.onBehalfAsync(fd, 'connect', address, address.length));
    },
  },
});
