# Runs a list of operations (JSON on argv[1]) in the current directory,
# then lists the tree: one JSON line of each operation's result (None or the
# errno's name), then one line per entry: path, type, mode, owner, group.
import errno, json, os, sys

os.umask(0o022)

def run(op):
    kind = op[0]
    if kind == 'umask':
        os.umask(op[1])
    elif kind == 'create':
        os.close(os.open(op[1], os.O_CREAT | os.O_EXCL | os.O_WRONLY, op[2]))
    elif kind == 'mkdir':
        os.mkdir(op[1], op[2])
    elif kind == 'write':
        fd = os.open(op[1], os.O_WRONLY | os.O_APPEND)
        os.write(fd, b'x')
        os.close(fd)
    elif kind == 'chmod':
        os.chmod(op[1], op[2])
    elif kind == 'rename':
        os.rename(op[1], op[2])
    else:
        raise ValueError(kind)

def name(e):
    return errno.errorcode.get(e.errno, str(e.errno))

results = []
for op in json.loads(sys.argv[1]):
    try:
        run(op)
        results.append(None)
    except OSError as e:
        results.append(name(e))
print(json.dumps(results))

def walk(rel):
    try:
        names = sorted(os.listdir(rel or '.'))
    except OSError as e:
        print(rel, name(e))
        return
    for entry in names:
        path = entry if rel == '' else rel + '/' + entry
        try:
            st = os.lstat(path)
        except OSError as e:
            print(path, name(e))
            continue
        kind = 'dir' if (st.st_mode & 0o170000) == 0o040000 else 'file'
        print(path, kind, '%o' % (st.st_mode & 0o7777), st.st_uid, st.st_gid)
        if kind == 'dir':
            walk(path)

walk('')
