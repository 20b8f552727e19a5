# A program that changes directory and runs programs in the tree it starts
# in (`base`): chdir, fchdir, getcwd, relative opens, execve and execveat
# (binaries and `#!` scripts), printing each result or errno's name, with
# the tree's own path shown as <w>. The tree is first changed as the layer
# would hold it: directories, a copied binary and a script made, a
# non-searchable directory, a symlink loop.
import ctypes, errno, os, shutil, sys

libc = ctypes.CDLL(None, use_errno=True)
SYS_EXECVEAT = {'x86_64': 322, 'aarch64': 281}[os.uname().machine]
AT_EMPTY_PATH = 0x1000
base = os.getcwd()
os.environ['BASE'] = base
os.environ.pop('PWD', None)
out = []


def note(what, f):
    try:
        value = f()
    except OSError as e:
        value = errno.errorcode[e.errno]
    if isinstance(value, int) and not isinstance(value, bool):
        value = 'ok'
    out.append('%s: %s' % (what, 'ok' if value is None else value))


def cwd():
    return os.getcwd().replace(base, '<w>', 1)


def run(what, path, dirfd=None, flags=0):
    sys.stdout.write('\n'.join(out) + ('\n' if out else ''))
    out.clear()
    sys.stdout.flush()
    pid = os.fork()
    if pid == 0:
        try:
            if dirfd is None:
                os.execv(path, [path, what])
            argv = (ctypes.c_char_p * 3)(path.encode() or b'x', what.encode(), None)
            envp = (ctypes.c_char_p * 1)(None)
            libc.syscall(SYS_EXECVEAT, dirfd, path.encode(), argv, envp, flags)
            raise OSError(ctypes.get_errno(), '')
        except OSError as e:
            print('%s: %s' % (what, errno.errorcode[e.errno]), flush=True)
        os._exit(0)
    os.waitpid(pid, 0)


os.makedirs('new/deep')
with open('new/deep/f', 'w') as f:
    f.write('deep f')
shutil.copy('/bin/echo', 'new/echo')
os.chmod('new/echo', 0o755)
with open('new/s.sh', 'w') as f:
    # No fork: dash's $PWD is getcwd()'s (python's chdir leaves PWD stale).
    f.write('#!/bin/sh\necho script "$@" in "<w>${PWD#"$BASE"}"\n')
os.chmod('new/s.sh', 0o755)
os.mkdir('locked')
os.chmod('locked', 0o600)
os.symlink('loop', 'loop')
os.symlink('new', 'ln')
with open('plain', 'w') as f:
    f.write('plain')

note('chdir new', lambda: os.chdir('new'))
note('getcwd', cwd)
note('read deep/f', lambda: open('deep/f').read())
note('read ../plain', lambda: open('../plain').read())
note('chdir deep', lambda: os.chdir('deep'))
note('getcwd', cwd)
note('read f', lambda: open('f').read())
note('chdir ../../new/deep/..', lambda: os.chdir('../../new/deep/..'))
note('getcwd', cwd)
run('exec ./echo', './echo')
run('exec ./s.sh', './s.sh')
run('exec deep/../s.sh', 'deep/../s.sh')
run('exec ../plain', '../plain')
run('exec missing', 'missing')
run('exec ../loop', '../loop')
run('exec ../locked/x', '../locked/x')
run('exec deep', 'deep')
note('chdir ..', lambda: os.chdir('..'))
d = os.open('new', os.O_RDONLY | os.O_DIRECTORY)
run('execveat new echo', 'echo', dirfd=d)
run('execveat new s.sh', 's.sh', dirfd=d)
run('execveat new missing', 'missing', dirfd=d)
run('execveat new deep', 'deep', dirfd=d)
note('fchdir new', lambda: os.fchdir(d))
note('getcwd', cwd)
run('exec s.sh after fchdir', './s.sh')
note('chdir /', lambda: os.chdir('/'))
note('chdir base', lambda: os.chdir(base))
for path in ('plain', 'missing', 'locked', 'loop', 'ln', 'new/deep/f/', 'ln/deep'):
    note('chdir ' + path, lambda: os.chdir(path))
    note('getcwd', cwd)
    os.chdir(base)
note('chdir locked/..', lambda: os.chdir('locked/..'))
note('getcwd', cwd)
sys.stdout.write('\n'.join(out) + '\n')
