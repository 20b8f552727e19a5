// A bare receive loop for bench/loops.mjs: answers CONTINUE to everything.
// mode 'recv': blocking SECCOMP_IOCTL_NOTIF_RECV on one listener (cannot be
// woken: only for this measurement); 'poll'/'epoll': readiness first, then RECV.
import { parentPort, workerData } from 'node:worker_threads';
import koffi from 'koffi';

const libc = koffi.load('libc.so.6');
const ioctl = libc.func('int ioctl(int fd, unsigned long request, void *arg)');
const ioctlValue = libc.func('int ioctl(int fd, unsigned long request, unsigned long arg)');
const poll = libc.func('int poll(void *fds, unsigned long nfds, int timeout)');
const epollCreate1 = libc.func('int epoll_create1(int flags)');
const epollCtl = libc.func('int epoll_ctl(int epfd, int op, int fd, void *event)');
const epollWait = libc.func('int epoll_wait(int epfd, void *events, int maxevents, int timeout)');
const RECV = 0xc0502100;
const SEND = 0xc0182101;
const SET_FLAGS = 0x40082104;
const ENOENT = 2;
const POLLIN = 1;
const POLLHUP = 0x10;

const { fds, mode, sync } = workerData;
if (sync) for (const fd of fds) ioctlValue(fd, SET_FLAGS, 1);
const notif = Buffer.alloc(80);
const response = Buffer.alloc(24);
response.writeUInt32LE(1, 20); // SECCOMP_USER_NOTIF_FLAG_CONTINUE

function answer(fd) {
  notif.fill(0);
  if (ioctl(fd, RECV, notif) < 0) return koffi.errno();
  notif.copy(response, 0, 0, 8);
  ioctl(fd, SEND, response);
  return 0;
}

function hungUp(fd) {
  const entry = Buffer.alloc(8);
  entry.writeInt32LE(fd, 0);
  entry.writeInt16LE(POLLIN, 4);
  poll(entry, 1, 0);
  return (entry.readInt16LE(6) & POLLHUP) !== 0;
}

const live = new Set(fds);
if (mode === 'recv') {
  // ENOENT: a withdrawn notification, or (6.6+) the filter has no user left.
  while (answer(fds[0]) !== ENOENT || !hungUp(fds[0]));
} else if (mode === 'poll') {
  const entries = Buffer.alloc(8 * fds.length);
  while (live.size > 0) {
    const list = [...live];
    entries.fill(0);
    list.forEach((fd, index) => {
      entries.writeInt32LE(fd, index * 8);
      entries.writeInt16LE(POLLIN, index * 8 + 4);
    });
    if (poll(entries, list.length, -1) < 0) continue;
    list.forEach((fd, index) => {
      const revents = entries.readInt16LE(index * 8 + 6);
      if (revents & POLLIN) answer(fd);
      else if (revents) live.delete(fd);
    });
  }
} else {
  const epfd = epollCreate1(0o2000000);
  const event = Buffer.alloc(12);
  for (const fd of fds) {
    event.writeUInt32LE(POLLIN, 0);
    event.writeBigUInt64LE(BigInt(fd), 4);
    epollCtl(epfd, 1, fd, event);
  }
  const events = Buffer.alloc(12 * 16);
  while (live.size > 0) {
    const count = epollWait(epfd, events, 16, -1);
    for (let index = 0; index < count; index++) {
      const flags = events.readUInt32LE(index * 12);
      const fd = Number(events.readBigUInt64LE(index * 12 + 4));
      if (flags & POLLIN) answer(fd);
      else {
        live.delete(fd);
        epollCtl(epfd, 2, fd, null);
      }
    }
  }
}
parentPort.postMessage('done');
