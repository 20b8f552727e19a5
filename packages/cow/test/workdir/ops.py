# Runs a list of file operations (JSON on argv[1]) in the current directory
# and prints one JSON result per operation: its value, or the errno's name.
import ctypes, errno, json, os, sys

libc = ctypes.CDLL(None, use_errno=True)
AT_FDCWD = -100

def where(path):
    # '@x': x by its absolute path; '^x': x from the parent of the directory.
    here = os.getcwd()
    if path.startswith('@'):
        return here + '/' + path[1:]
    if path.startswith('^'):
        return '../' + os.path.basename(here) + '/' + path[1:]
    return path

def renameat2(a, b, flags):
    if libc.renameat2(AT_FDCWD, a.encode(), AT_FDCWD, b.encode(), flags) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))

def run(op):
    kind = op[0]
    args = [where(a) if isinstance(a, str) and kind != 'symlink' or (isinstance(a, str) and i == 1) else a for i, a in enumerate(op[1:])]
    if kind == 'symlink':
        args = [op[1], where(op[2])]
    if kind == 'write':
        args[1] = op[2]
        args[2] = op[3]
    if kind == 'write':
        path, data, mode = args
        with open(path, mode) as f:
            f.write(data)
        return None
    if kind == 'excl':
        fd = os.open(args[0], os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
        os.write(fd, args[1].encode())
        os.close(fd)
        return None
    if kind == 'read':
        with open(args[0]) as f:
            return f.read()
    if kind == 'unlink':
        return os.unlink(args[0])
    if kind == 'mkdir':
        return os.mkdir(args[0], 0o750)
    if kind == 'rmdir':
        return os.rmdir(args[0])
    if kind == 'rename':
        return os.rename(args[0], args[1])
    if kind == 'rename2':
        return renameat2(args[0], args[1], op[3])
    if kind == 'link':
        return os.link(args[0], args[1])
    if kind == 'symlink':
        return os.symlink(args[0], args[1])
    if kind == 'truncate':
        return os.truncate(args[0], args[1])
    if kind == 'chmod':
        return os.chmod(args[0], args[1])
    if kind == 'stat':
        st = os.stat(args[0])
        return [oct(st.st_mode), st.st_size if not os.path.isdir(args[0]) else 0, st.st_nlink if not os.path.isdir(args[0]) else 0]
    if kind == 'lstat':
        st = os.lstat(args[0])
        return oct(st.st_mode)
    if kind == 'list':
        return sorted(os.listdir(args[0]))
    if kind == 'readlink':
        return os.readlink(args[0])
    if kind == 'access':
        return os.access(args[0], args[1])
    raise ValueError(kind)

out = []
for op in json.loads(sys.argv[1]):
    try:
        out.append(['ok', run(op)])
    except OSError as e:
        out.append(['err', errno.errorcode.get(e.errno, str(e.errno))])
print(json.dumps(out))
