# Changes a tree (the current directory, named `w`) the same way every run,
# then makes every openat2 of a plan (JSON on argv[1]: dirfd, path, open
# flags, resolve flags; every dirfd × path × read flags × resolve flags,
# then the writes) and prints one JSON line per call: what it opened
# (type and contents), or the errno's name.
import ctypes, errno, json, os, stat, sys

libc = ctypes.CDLL(None, use_errno=True)
SYS_OPENAT2 = 437  # x86_64 and aarch64 (the generic table)


class OpenHow(ctypes.Structure):
    _fields_ = [('flags', ctypes.c_uint64), ('mode', ctypes.c_uint64), ('resolve', ctypes.c_uint64)]


def change_tree():
    with open('a', 'a') as f:
        f.write('more\n')  # a lower file copied up
    os.mkdir('nd')  # a directory of the upper
    with open('nd/f', 'w') as f:
        f.write('new f\n')
    os.symlink('../a', 'nd/up')
    os.symlink('/a', 'nd/abs')
    os.symlink('../..', 'nd/out')
    os.symlink('../d', 'nd/dirlink')
    os.symlink('loop', 'nd/loop')
    os.unlink('d/x')
    os.rename('d/s', 'moved')  # a renamed directory
    os.mkdir('nd/sub')
    os.chmod('nd/sub', 0o600)  # not searchable


def describe(fd, flags):
    st = os.fstat(fd)
    if flags & os.O_PATH:
        kind = 'dir' if stat.S_ISDIR(st.st_mode) else 'link' if stat.S_ISLNK(st.st_mode) else 'file'
        return kind + ' ' + str(st.st_size if kind == 'file' else '')
    if stat.S_ISDIR(st.st_mode):
        return 'dir ' + ','.join(sorted(os.listdir(fd)))
    if flags & (os.O_WRONLY | os.O_RDWR):
        os.write(fd, b'w')
        return 'wrote'
    return 'file ' + os.pread(fd, 200, 0).decode('latin1')


def probe(dirfd_name, path, flags, resolve):
    dirfd = os.open(dirfd_name, os.O_PATH | os.O_DIRECTORY)
    how = OpenHow(flags | os.O_CLOEXEC, 0, resolve)
    try:
        fd = libc.syscall(SYS_OPENAT2, dirfd, path.encode(), ctypes.byref(how), ctypes.sizeof(how))
        if fd < 0:
            return errno.errorcode.get(ctypes.get_errno(), str(ctypes.get_errno()))
        try:
            return describe(fd, flags)
        finally:
            os.close(fd)
    finally:
        os.close(dirfd)


plan = json.loads(sys.argv[1])
calls = [
    (dirfd_name, path, flags, resolve)
    for dirfd_name in plan['dirfds']
    for path in plan['paths']
    for flags in plan['reads']
    for resolve in plan['resolves']
] + [tuple(call) for call in plan['writes']]
change_tree()
for dirfd_name, path, flags, resolve in calls:
    print(json.dumps([dirfd_name, path, flags, resolve, probe(dirfd_name, path, flags, resolve)]))
