import { libc } from './libc.js';

// _SC_PAGESIZE in glibc's and musl's <bits/confname.h> / <unistd.h>.
const _SC_PAGESIZE = 30;
let size: number | undefined;

/** The kernel's page size in bytes (4 KiB on x86_64; 4, 16 or 64 KiB on aarch64). */
export function pageSize(): number {
  size ??= Number(libc.func('long sysconf(int)')(_SC_PAGESIZE));
  return size;
}
