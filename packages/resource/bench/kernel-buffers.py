# What socket and pipe buffers a program can pin, by the kernel's own count:
# N AF_UNIX socketpairs (stream or datagram) or pipes, each filled without
# being read, with and without raised buffer sizes. Prints one line per case:
# the bytes queued, what the kernel charges for them (SIOCOUTQ: the sender's
# sk_wmem_alloc, skb truesize included; for pipes F_GETPIPE_SZ, the pages
# reserved), and how far MemAvailable fell (noisy on a busy machine).
# Usage: python3 kernel-buffers.py N   (run by kernel-buffers.sh as root, as
# root without capabilities in a sandbox, and as nobody).
import errno, fcntl, os, socket, sys, termios

F_SETPIPE_SZ, F_GETPIPE_SZ = 1031, 1032
SIOCOUTQ = termios.TIOCOUTQ


def available():
    for line in open('/proc/meminfo'):
        if line.startswith('MemAvailable:'):
            return int(line.split()[1]) * 1024


def fill(fd, chunk=65536):
    os.set_blocking(fd, False)
    data, total = b'x' * chunk, 0
    while True:
        try:
            total += os.write(fd, data)
        except OSError as error:
            if error.errno in (errno.EAGAIN, errno.ENOBUFS):
                return total
            raise


def outq(fd):
    return int.from_bytes(fcntl.ioctl(fd, SIOCOUTQ, b'\0' * 4), 'little')


def case(kind, raised, n):
    before = available()
    held, queued, charged = [], 0, 0
    for _ in range(n):
        if kind == 'pipe':
            r, w = os.pipe()
            if raised:
                try:
                    fcntl.fcntl(w, F_SETPIPE_SZ, 1 << 20)
                except OSError:
                    pass  # EPERM past the user's pipe-user-pages-soft
            queued += fill(w)
            charged += fcntl.fcntl(w, F_GETPIPE_SZ)
            held += [r, w]
            continue
        type_ = socket.SOCK_STREAM if kind == 'stream' else socket.SOCK_DGRAM
        pair = socket.socketpair(socket.AF_UNIX, type_)
        for s in pair:
            if raised:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 64 << 20)
                s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 << 20)
            queued += fill(s.fileno())
        charged += sum(outq(s.fileno()) for s in pair)
        held += pair
    fell = before - available()
    mib = lambda x: f'{x / 2**20:8.1f}'
    print(f'{kind:6} raised={int(raised)} uid={os.getuid():<5} n={n:<4} queued {mib(queued)} MiB'
          f'  charged {mib(charged)} MiB ({charged / n / 1024:6.0f} KiB each)  MemAvailable -{mib(fell)} MiB',
          flush=True)
    for item in held:
        item.close() if hasattr(item, 'close') else os.close(item)


n = int(sys.argv[1]) if len(sys.argv) > 1 else 100
for kind in ('stream', 'dgram', 'pipe'):
    for raised in (False, True):
        case(kind, raised, n)
