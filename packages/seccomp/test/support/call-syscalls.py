# Calls raw syscalls given as JSON on argv[1] ([[nr, arg, ...], ...]; numbers as strings so
# that 64-bit values survive) and prints [[result, errno], ...] as JSON.
import ctypes
import json
import sys

libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
results = []
for nr, *args in json.loads(sys.argv[1]):
    ctypes.set_errno(0)
    result = libc.syscall(ctypes.c_long(int(nr)), *[ctypes.c_ulong(int(a)) for a in args])
    results.append([result, ctypes.get_errno() if result == -1 else 0])
print(json.dumps(results), flush=True)
