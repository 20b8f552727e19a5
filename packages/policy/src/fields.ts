import { availableParallelism } from 'node:os';
import { getRlimit } from '@sandlock/sys';
import { append, custom, type FieldSpec, field, set, toggle } from './field.js';
import { credentialSources, httpAuthSpec, httpRuleSpec } from './http-spec.js';
import {
  bool,
  byteSize,
  cpu,
  cpuList,
  existingDirectory,
  existingPath,
  hostname,
  instant,
  integer,
  list,
  mountSpec,
  nullable,
  oneOf,
  type PluginRef,
  type PortSpec,
  path,
  plugin,
  portSpec,
  seed,
  variables,
} from './kinds.js';
import { bindSpec, netSpec } from './net-spec.js';
import { SYSTEM_ETC, SYSTEM_PROGRAMS } from './presets.js';

/**
 * The policy, one entry per field, in the order problems are reported. To
 * add a field: add its entry here and write the module that enforces it
 * (docs/design.md, "Adding a policy field").
 */
export const FIELDS = {
  fsRead: field({
    kind: list(existingPath),
    default: [] as string[],
    combine: 'append',
    setter: append<string>(),
    flags: [
      {
        long: 'fs-read',
        short: 'r',
        value: 'PATH',
        help: 'allow reading and executing beneath PATH',
      },
    ],
    profile: { section: 'filesystem', key: 'read' },
    doc: 'Paths the sandbox may read and execute beneath; nothing else is readable.',
  }),
  fsWrite: field({
    kind: list(existingPath),
    default: [] as string[],
    combine: 'append',
    setter: append<string>(),
    flags: [
      {
        long: 'fs-write',
        short: 'w',
        value: 'PATH',
        help: 'allow reading, executing and writing beneath PATH',
      },
    ],
    profile: { section: 'filesystem', key: 'write' },
    doc: 'Paths the sandbox may read, execute and write beneath.',
  }),
  fsDeny: field({
    kind: list(path),
    default: [] as string[],
    combine: 'append',
    setter: append<string>(),
    flags: [
      { long: 'fs-deny', value: 'PATH', help: 'hide PATH inside a readable or writable tree' },
    ],
    profile: { section: 'filesystem', key: 'deny' },
    doc: 'Paths hidden inside the readable and writable trees.',
  }),
  system: field({
    kind: bool,
    default: false,
    combine: 'replace',
    setter: toggle(),
    flags: [
      {
        long: 'system',
        help: 'allow reading the system: programs, libraries and a safe part of /etc',
      },
    ],
    profile: { section: 'filesystem', key: 'system' },
    doc: 'Let the sandbox read and execute the programs and libraries (/usr, /bin, /sbin, /lib*) and read the parts of /etc programs need, not its secrets.',
    details: [
      'Read and execute, where they exist:',
      SYSTEM_PROGRAMS.map((path) => `\`${path}\``).join(', '),
      '',
      'Read, where they exist (`python3*`: every `/etc/python3.N`); nothing else of /etc, which cannot be listed:',
      SYSTEM_ETC.map((path) => `\`${path}\``).join(', '),
    ].join('\n'),
  }),
  devices: field({
    kind: bool,
    default: true,
    combine: 'replace',
    setter: toggle(),
    flags: [
      {
        long: 'no-devices',
        sets: false,
        help: 'no /dev/null, /dev/zero, /dev/full, /dev/random, /dev/urandom, /dev/tty',
      },
    ],
    profile: { section: 'filesystem', key: 'devices' },
    doc: 'Let the sandbox read and write the device nodes that reach nothing: /dev/null, /dev/zero, /dev/full, /dev/random, /dev/urandom, and /dev/tty when this process has a terminal.',
    details:
      'The nodes themselves only: nothing can be created or removed in /dev, and their metadata stays unchangeable. Pushing input into the terminal (TIOCSTI, TIOCLINUX) is refused by the seccomp filter.',
  }),
  workdir: field({
    kind: nullable(existingDirectory),
    default: null as string | null,
    combine: 'replace',
    setter: set<string>(),
    flags: [
      {
        long: 'workdir',
        value: 'DIR',
        help: 'run with DIR copy-on-write: changes go to a private layer, committed at the end',
      },
    ],
    profile: { section: 'workdir', key: 'dir' },
    doc: 'A directory the sandbox sees and changes through a private copy-on-write layer; at the end the layer is committed to it, discarded or kept (onExit, onError).',
    details:
      'Inside the directory every change (files, directories, renames, links, modes, times) lands in the layer and reads see the layer first; the directory itself is untouched until the commit, which writes each file beside its place and renames it over (atomic per file), and finishes after a crash. Outside it the policy applies as usual.',
  }),
  onExit: field({
    kind: oneOf(['commit', 'abort', 'keep'] as const),
    default: 'commit' as 'commit' | 'abort' | 'keep',
    combine: 'replace',
    setter: set<'commit' | 'abort' | 'keep'>(),
    flags: [
      {
        long: 'on-exit',
        value: 'WHAT',
        help: 'with --workdir, when the command exits 0: commit, abort or keep the layer',
      },
    ],
    profile: { section: 'workdir', key: 'on_exit' },
    doc: "What happens to the workdir's layer when the program exits with status 0: commit it to the directory, abort (discard) it, or keep it for `sandlock cow commit|abort`.",
  }),
  onError: field({
    kind: oneOf(['commit', 'abort', 'keep'] as const),
    default: 'abort' as 'commit' | 'abort' | 'keep',
    combine: 'replace',
    setter: set<'commit' | 'abort' | 'keep'>(),
    flags: [
      {
        long: 'on-error',
        value: 'WHAT',
        help: 'with --workdir, when the command fails (non-zero, signal, timeout): commit, abort or keep',
      },
    ],
    profile: { section: 'workdir', key: 'on_error' },
    doc: "What happens to the workdir's layer when the program ends otherwise (a non-zero status, a signal, a timeout): commit, abort or keep.",
  }),
  maxDisk: field({
    kind: nullable(byteSize),
    default: null as number | null,
    combine: 'replace',
    setter: set<number | string>(),
    flags: [
      {
        long: 'max-disk',
        value: 'SIZE',
        help: "bound the workdir's layer to SIZE: as root (CAP_SYS_ADMIN), up to a quarter of the memory, the layer is a tmpfs of that size and writes past it fail with ENOSPC; otherwise it is measured and a sandbox whose files go over it is killed ('sandlock check' says which)",
      },
    ],
    profile: { section: 'workdir', key: 'max_disk' },
    doc: "The most bytes the workdir's layer may hold. With CAP_SYS_ADMIN (root) and a bound of at least one page and at most a quarter of the machine's memory, the layer's files are on a tmpfs of that size (rounded down to whole pages) of its own: the kernel fails any write, copy or creation past it with ENOSPC and the program goes on (`result.workdir.diskBound` is `tmpfs`; such a layer is held in memory, and one kept is lost if the machine restarts). Otherwise the bound is measured (`measured`): a copy or creation the layer makes past it fails with ENOSPC; no file the sandbox writes (in the workdir or elsewhere) may grow past it: the kernel fails the write with EFBIG and sends SIGXFSZ, which ends a program that does not handle it (RLIMIT_FSIZE); the layer is measured every 100 ms or so, and a sandbox whose files together hold more is killed (`killedBy`). Either way, a layer whose file sizes add up to more at the end (sparse files included) is finished as an error (onError). `sandlock check` says which applies here.",
  }),
  fsStorage: field({
    kind: nullable(path),
    default: null as string | null,
    combine: 'replace',
    setter: set<string>(),
    flags: [
      {
        long: 'fs-storage',
        value: 'DIR',
        help: 'keep the copy-on-write layers in DIR (default $TMPDIR/sandlock-cow-UID)',
      },
    ],
    profile: { section: 'workdir', key: 'storage' },
    doc: 'Where the copy-on-write layers are kept (default `$TMPDIR/sandlock-cow-<uid>`): made 0700 if missing; one owned by another user or writable by others is refused.',
  }),
  chroot: field({
    kind: nullable(existingDirectory),
    default: null as string | null,
    combine: 'replace',
    setter: set<string>(),
    flags: [
      {
        long: 'chroot',
        value: 'DIR',
        help: 'run with DIR as / (an emulated chroot: no namespace, no root needed)',
      },
    ],
    profile: { section: 'filesystem', key: 'chroot' },
    doc: 'A directory the sandbox sees as `/`: every path it names resolves inside it, as `openat2(RESOLVE_IN_ROOT)` resolves, symlinks and `..` included. The read, write and deny paths, and the `unix` socket paths, are then written as the sandbox sees them.',
    details:
      'Nothing outside the directory is reachable but the mounts (fsMount): Landlock grants only the directory and the mounts, translated from the read and write paths. `/proc` inside the root exists only when mounted (`/proc:/proc`), and then keeps the process hiding and the virtual files.',
  }),
  fsMount: field({
    kind: list(mountSpec),
    default: [] as string[],
    combine: 'append',
    setter: append<string>(),
    flags: [
      {
        long: 'fs-mount',
        value: 'VIRT:HOST[:ro]',
        help: 'with --chroot, show the host path HOST at VIRT inside the root (:ro read-only)',
      },
    ],
    profile: { section: 'filesystem', key: 'mount' },
    doc: 'With chroot, host paths shown inside the root, each `VIRT:HOST` or `VIRT:HOST:ro`: a bind mount made by path resolution (no mount namespace). Readable, and writable unless `:ro`.',
  }),
  env: field({
    kind: variables,
    default: {} as Record<string, string>,
    combine: 'merge',
    setter: custom(
      'env',
      'name, value or variables',
      (
        current,
        args: [name: string, value: string] | [variables: Readonly<Record<string, string>>],
      ) => ({
        ...(current as object),
        ...(typeof args[0] === 'string' ? { [args[0]]: args[1] } : args[0]),
      }),
    ),
    flags: [
      { long: 'env', value: 'KEY=VALUE', help: 'set an environment variable for the command' },
    ],
    profile: { section: 'environment', key: 'vars' },
    doc: 'Variables set for the program, over the inherited (or, with cleanEnv, empty) environment.',
  }),
  cleanEnv: field({
    kind: bool,
    default: false,
    combine: 'replace',
    setter: toggle(),
    flags: [{ long: 'clean-env', help: 'start from an empty environment (only --env variables)' }],
    profile: { section: 'environment', key: 'clean' },
    doc: "Start the program's environment empty instead of from this process's.",
  }),
  cwd: field({
    kind: nullable(existingPath),
    default: null as string | null,
    combine: 'replace',
    setter: set<string>(),
    flags: [{ long: 'cwd', value: 'DIR', help: 'working directory of the command' }],
    profile: { section: 'program', key: 'cwd' },
    doc: "The program's working directory (default: this process's).",
  }),
  noRandomizeMemory: field({
    kind: bool,
    default: false,
    combine: 'replace',
    setter: toggle(),
    flags: [{ long: 'no-randomize-memory', help: 'turn off address space randomization' }],
    profile: { section: 'program', key: 'no_randomize_memory' },
    doc: 'Turn off address space layout randomization for the program.',
  }),
  noHugePages: field({
    kind: bool,
    default: false,
    combine: 'replace',
    setter: toggle(),
    flags: [{ long: 'no-huge-pages', help: 'turn off transparent huge pages' }],
    profile: { section: 'program', key: 'no_huge_pages' },
    doc: 'Turn off transparent huge pages for the program.',
  }),
  noCoredump: field({
    kind: bool,
    default: false,
    combine: 'replace',
    setter: toggle(),
    flags: [{ long: 'no-coredump', help: 'never write core files' }],
    profile: { section: 'program', key: 'no_coredump' },
    doc: 'Never write core files (RLIMIT_CORE 0).',
  }),
  cpuCores: field({
    kind: nullable({
      ...list(cpu, { split: cpuList }),
      check(value, at) {
        if (Array.isArray(value) && value.length === 0) {
          return at.problem('expected at least one CPU (or leave it unset)');
        }
        return list(cpu).check(value, at);
      },
    }),
    default: null as number[] | null,
    combine: 'append',
    setter: append<number>(),
    flags: [{ long: 'cpu-cores', value: 'LIST', help: 'run only on these CPUs, e.g. 0,2-3' }],
    profile: { section: 'limits', key: 'cpu_cores' },
    doc: 'The CPUs the program may run on (sched_setaffinity).',
  }),
  maxOpenFiles: field({
    kind: nullable(
      integer(
        16,
        () => Number(getRlimit('NOFILE').hard),
        'a number of open files',
        "this process's hard limit",
        "the sandbox's first process needs a few of its own; no sandbox can raise this process's hard limit",
      ),
    ),
    default: null as number | null,
    combine: 'replace',
    setter: set<number>(),
    flags: [{ long: 'max-open-files', value: 'N', help: 'limit open files (RLIMIT_NOFILE)' }],
    profile: { section: 'limits', key: 'open_files' },
    doc: 'The most files each process may have open (RLIMIT_NOFILE).',
  }),
  netBind: field({
    kind: list(portSpec),
    default: [] as PortSpec[],
    combine: 'append',
    setter: append<PortSpec>(),
    flags: [{ long: 'net-bind', value: 'PORT', help: 'allow binding TCP PORT (or FROM-TO)' }],
    profile: { section: 'network', key: 'bind' },
    doc: 'TCP ports the sandbox may bind, enforced by Landlock alone; none by default.',
    details:
      'The same as a `tcp://` rule of `netAllowBind`: both lists become Landlock rules. A policy with `netDenyBind` has neither.',
  }),
  netConnect: field({
    kind: list(portSpec),
    default: [] as PortSpec[],
    combine: 'append',
    setter: append<PortSpec>(),
    flags: [
      { long: 'net-connect', value: 'PORT', help: 'allow connecting to TCP PORT (or FROM-TO)' },
    ],
    profile: { section: 'network', key: 'connect' },
    doc: 'TCP ports the sandbox may connect to; none by default.',
  }),
  noRawSockets: field({
    kind: bool,
    default: true,
    combine: 'replace',
    setter: toggle(),
    flags: [
      {
        long: 'allow-raw-sockets',
        sets: false,
        help: 'let raw IP and packet sockets through the filter (they still need CAP_NET_RAW, which no sandbox has)',
      },
    ],
    profile: { section: 'network', key: 'no_raw_sockets' },
    doc: 'Refuse raw IP and packet sockets in the seccomp filter. Turned off, they still fail with EPERM: the kernel wants CAP_NET_RAW for them, and a sandbox runs without capabilities (a warning says so).',
  }),
  netAllow: field({
    kind: list(netSpec),
    default: [] as string[],
    combine: 'append',
    setter: append<string>(),
    flags: [
      {
        long: 'net-allow',
        value: 'SPEC',
        help: 'allow traffic to SPEC: [tcp|udp|icmp://]HOST|IP|CIDR|*[:PORTS] (loopback included only when a rule says so)',
      },
    ],
    profile: { section: 'network', key: 'allow' },
    doc: 'Destinations the sandbox may connect and send to; nothing else. UDP and ICMP sockets exist only with a rule of that protocol.',
    details: [
      'A rule is `[scheme://]WHERE[:PORTS]`. WHERE is a host name (resolved once, when the sandbox starts, and pinned: the sandbox sees it in its /etc/hosts), an IP address, a CIDR, or `*`; IPv6 in brackets (`[::1]:8080`, `[fd00::/8]`). PORTS is `443`, `80,443`, `8000-8100` or `*` (any, the default). The scheme is `tcp://`, `udp://` or `icmp://` (ping sockets; no ports); without one a rule is about TCP and UDP.',
      '',
      'An IPv4-mapped IPv6 address (`::ffff:10.0.0.1`) is matched as the IPv4 address it carries. Loopback is not special: it is reached only when a rule says so. A policy has `netAllow` or `netDeny`, not both.',
      '',
      "Every datagram (`sendto`, `sendmsg`, `sendmmsg`, `connect` of a UDP or ping socket) is checked, and sent from the copy that was checked. A TCP `connect` is checked on a copy of its address and made by the sandbox's reaper, in the policy's Landlock domain: `netConnect` ports, when given, apply as well (without them, the TCP rules' own ports are Landlock's). `sendto` and `sendmsg` with `MSG_FASTOPEN` are refused (EOPNOTSUPP).",
    ].join('\n'),
  }),
  netDeny: field({
    kind: list(netSpec),
    default: [] as string[],
    combine: 'append',
    setter: append<string>(),
    flags: [
      {
        long: 'net-deny',
        value: 'SPEC',
        help: 'allow traffic anywhere but SPEC (same form as --net-allow)',
      },
    ],
    profile: { section: 'network', key: 'deny' },
    doc: 'Destinations the sandbox may not connect or send to; UDP, ICMP and TCP elsewhere are allowed (TCP within netConnect ports, when given).',
    details: [
      "A wildcard (`*.internal.example`) is a rule about names, and holds where a name is seen: the sandbox's DNS answers the names beneath it REFUSED; on ports the HTTP proxy takes, a TLS server name or HTTP `Host` beneath it is refused; and the addresses of names beneath it that the policy names elsewhere (an HTTP rule's host), resolved at start, are refused whatever the protocol. A wildcard with ports sends those ports' TCP connects to the proxy; one without ports sends none, and other TCP and UDP go direct under the address rules.",
      '',
      'What it cannot promise: a connect to an address that no one resolved for the sandbox (written in the program, given by `curl --resolve`, learnt over DNS-over-HTTPS or from a server) is judged by its address alone, and goes through unless an address rule (an IP or CIDR in `netDeny`, or `netAllow` instead) refuses it. To keep a network out, deny its addresses.',
    ].join('\n'),
  }),
  unix: field({
    kind: list(path),
    default: [] as string[],
    combine: 'append',
    setter: append<string>(),
    flags: [
      {
        long: 'unix',
        value: 'PATH',
        help: 'allow connecting and sending to the named Unix sockets at or beneath PATH',
      },
    ],
    profile: { section: 'network', key: 'unix' },
    doc: 'Named Unix sockets the sandbox may connect and send to, at or beneath each path, besides those it may write.',
    details: [
      "A pathname Unix socket (`connect`, `sendto`, `sendmsg`) is reached only when the policy lets the sandbox write the socket file (it lies beneath an `fsWrite` path and beneath no `fsDeny` path), the kernel's own rule for socket files, or it lies at or beneath a `unix` path; otherwise the call fails with EACCES. The path is resolved as the kernel resolves it for the caller (its cwd, its root, symlinks). Abstract sockets are left to Landlock's scoping: only those made inside the sandbox. A sandbox that needs no supervisor (no address rules, no write grant, no `unix` path, nothing else supervised) may make no Unix socket at all (EACCES), only connected pairs (`socketpair` of streams).",
    ].join('\n'),
  }),
  netAllowBind: field({
    kind: list(bindSpec),
    default: [] as string[],
    combine: 'append',
    setter: append<string>(),
    flags: [
      {
        long: 'net-allow-bind',
        value: 'PORTS',
        help: 'allow binding PORTS: [tcp|udp://]PORT, PORT,PORT, FROM-TO or * (no scheme: TCP and UDP)',
      },
    ],
    profile: { section: 'network', key: 'allow_bind' },
    doc: 'Ports the sandbox may bind (TCP and UDP unless a scheme says which); none by default.',
    details: [
      'A rule is `[tcp://|udp://]PORTS`, PORTS being `8080`, `80,443`, `8000-8100` or `*`. Port 0 is the bind to an ephemeral port the kernel picks: it is allowed only by a rule that covers 0 (`0`, `0-…`, `*`), as Landlock does. A policy has `netAllowBind` or `netDenyBind`, not both.',
      '',
      "TCP ports become Landlock rules beside `netBind`: no cost per call. UDP, which Landlock does not mediate, is checked by the supervisor on a copy of the address and bound by the sandbox's reaper. UDP sockets exist only with a UDP rule of `netAllow` or `netDeny`.",
      '',
      "The binds the kernel makes by itself (a `connect`, `sendto` or `listen` of an unbound socket) take an ephemeral port, which the sandbox cannot choose, and are not refused. Ports below 1024 stay privileged: binds are made without capabilities, whatever the supervisor's.",
    ].join('\n'),
  }),
  netDenyBind: field({
    kind: list(bindSpec),
    default: [] as string[],
    combine: 'append',
    setter: append<string>(),
    flags: [
      {
        long: 'net-deny-bind',
        value: 'PORTS',
        help: 'allow binding any port but PORTS (same form as --net-allow-bind)',
      },
    ],
    profile: { section: 'network', key: 'deny_bind' },
    doc: 'Ports the sandbox may not bind; every other port may be bound (below 1024 only where the kernel lets a process without capabilities).',
    details:
      "Landlock cannot refuse one port and allow the rest: every TCP and UDP bind is checked by the supervisor on a copy of the address and made by the sandbox's reaper (about 40 µs more per bind), and the sandbox itself may not bind TCP sockets directly. A policy with `netDenyBind` has no `netAllowBind` nor `netBind`.",
  }),
  portRemap: field({
    kind: bool,
    default: false,
    combine: 'replace',
    setter: toggle(),
    flags: [
      {
        long: 'port-remap',
        help: 'give the sandbox its own port space: a port taken on the host is bound to a free one',
      },
    ],
    profile: { section: 'network', key: 'port_remap' },
    doc: 'A private port space: a bind to a port taken on the host gets a free real port, which the sandbox still sees as the port it asked for.',
    details: [
      "The bind rules apply to the port the sandbox asked for (its virtual port). The real bind is made by the sandbox's reaper in the policy's Landlock domain: the port itself when it is free, else an ephemeral port the kernel picks (the domain allows TCP port 0 for that, and the sandbox binds TCP only through the supervisor).",
      '',
      '`getsockname`, `getpeername` and `/proc/net/{tcp,tcp6,udp,udp6}` show the virtual port; a connection from the sandbox to a virtual port reaches the real one. A virtual port keeps its real port while the sandbox runs.',
    ].join('\n'),
  }),
  bestEffort: field({
    kind: bool,
    default: false,
    combine: 'replace',
    setter: toggle(),
    flags: [
      {
        long: 'best-effort',
        help: 'run where the kernel lacks a protection, saying what was dropped',
      },
    ],
    profile: { section: 'sandbox', key: 'best_effort' },
    doc: 'Drop the protections this kernel cannot provide, and say which, instead of refusing to run.',
  }),
  maxMemory: field({
    kind: nullable(byteSize),
    default: null as number | null,
    combine: 'replace',
    setter: set<number | string>(),
    flags: [
      {
        long: 'max-memory',
        short: 'm',
        value: 'SIZE',
        help: 'kill the sandbox above SIZE of memory (512M, 2G)',
      },
    ],
    profile: { section: 'limits', key: 'memory' },
    doc: 'The most memory the sandbox may use at once, in bytes; it is killed above.',
  }),
  maxProcesses: field({
    kind: nullable(integer(1, 1 << 22, 'a number of processes')),
    default: null as number | null,
    combine: 'replace',
    setter: set<number>(),
    flags: [
      {
        long: 'max-processes',
        short: 'P',
        value: 'N',
        help: 'at most N processes at once (threads not counted)',
      },
    ],
    profile: { section: 'limits', key: 'processes' },
    doc: 'The most processes of the sandbox at once (threads not counted); more forks fail with EAGAIN.',
  }),
  maxCpu: field({
    kind: nullable(
      integer(
        1,
        () => 100 * availableParallelism(),
        'a percentage of one CPU',
        '100 times the number of CPUs',
      ),
    ),
    default: null as number | null,
    combine: 'replace',
    setter: set<number>(),
    flags: [
      { long: 'max-cpu', short: 'c', value: 'PCT', help: 'throttle to PCT percent of one CPU' },
    ],
    profile: { section: 'limits', key: 'cpu' },
    doc: 'CPU time as a percentage of one CPU (50 is half of one, 200 two).',
  }),
  plugins: field({
    kind: list(plugin),
    default: [] as PluginRef[],
    combine: 'append',
    setter: custom(
      'plugin',
      'module, options?',
      (current, [module, options]: [module: string | URL, options?: unknown]) => [
        ...(Array.isArray(current) ? current : []),
        {
          module: module instanceof URL ? module.href : module,
          ...(options === undefined ? {} : { options }),
        },
      ],
    ),
    flags: [
      {
        long: 'plugin',
        value: 'MODULE',
        help: 'add a supervisor handler module (an absolute path, or JSON {"module","options"})',
      },
    ],
    profile: { section: 'sandbox', key: 'plugins' },
    doc: 'Third-party supervisor handler modules (see @sandlock/dispatch), and their options.',
  }),
  hostname: field({
    kind: nullable(hostname),
    default: null as string | null,
    combine: 'replace',
    setter: set<string>(),
    flags: [{ long: 'hostname', value: 'NAME', help: 'the host name the sandbox sees' }],
    profile: { section: 'determinism', key: 'hostname' },
    doc: 'The host name the sandbox sees (uname, /etc/hostname).',
  }),
  numCpus: field({
    kind: nullable(integer(1, 4096, 'a number of CPUs')),
    default: null as number | null,
    combine: 'replace',
    setter: set<number>(),
    flags: [{ long: 'num-cpus', value: 'N', help: 'the number of CPUs the sandbox sees' }],
    profile: { section: 'determinism', key: 'num_cpus' },
    doc: 'The number of CPUs the sandbox sees (sched_getaffinity, /proc/cpuinfo, /sys).',
  }),
  deterministicDirs: field({
    kind: bool,
    default: false,
    combine: 'replace',
    setter: toggle(),
    flags: [{ long: 'deterministic-dirs', help: 'list every directory sorted by name' }],
    profile: { section: 'determinism', key: 'sorted_dirs' },
    doc: "Directory listings sorted by name, so that runs do not depend on the filesystem's order.",
  }),
  randomSeed: field({
    kind: nullable(seed),
    default: null as string | null,
    combine: 'replace',
    setter: set<number | bigint | string>(),
    flags: [
      {
        long: 'random-seed',
        value: 'N',
        help: 'seed getrandom and /dev/urandom: the same N gives the same bytes',
      },
    ],
    profile: { section: 'determinism', key: 'random_seed' },
    doc: 'Seed of the randomness the sandbox sees (getrandom, /dev/urandom, /dev/random), a u64 kept as decimal text; each process gets its own stream, by its place in the process tree.',
  }),
  timeStart: field({
    kind: nullable(instant),
    default: null as number | null,
    combine: 'replace',
    setter: set<Date | number | string>(),
    flags: [
      {
        long: 'time-start',
        value: 'TIME',
        help: 'start the wall clock at TIME (e.g. 2000-01-01T00:00:00Z); it then ticks',
      },
    ],
    profile: { section: 'determinism', key: 'time_start' },
    doc: 'The wall-clock instant the sandbox starts at, in epoch milliseconds; it then ticks. Monotonic clocks stay real.',
  }),
  httpAllow: field({
    kind: list(httpRuleSpec),
    default: [] as string[],
    combine: 'append',
    setter: append<string>(),
    flags: [
      {
        long: 'http-allow',
        value: 'RULE',
        help: "allow HTTP(S) requests matching 'METHOD HOST/PATH' (e.g. 'GET api.example.com/v1/**'); any makes the rest denied",
      },
    ],
    profile: { section: 'http', key: 'allow' },
    doc: 'HTTP requests the sandbox may make; with any, every other request is refused with 403.',
    details: [
      'A rule is `METHOD HOST[:PORT][/PATH]`. METHOD is a method name or `*`. HOST is a name, `*.NAME` (any name beneath NAME, not NAME itself), an IP address (IPv6 in brackets) or `*`; without a port, any port. PATH may hold `*` (any characters within one segment) and `**` segments (any number of segments, none included); without a path, `/**`. The query is not matched.',
      '',
      "Deny rules are checked first. Every request of a connection is checked (keep-alive, pipelining, each HTTP/2 stream), its path normalized first (percent-escapes of unreserved characters decoded, dot segments removed, and every reading a server may give to `//`, `;` parameters, `%2F`, `%5C` and `\\` checked: a request is allowed only when each reading is). A refused request is answered 403 with the rule that refused it. HTTPS requests are seen by intercepting TLS with the sandbox's CA (`httpCa`, or one made for the sandbox) where a rule has a method or a path, or a credential is added; otherwise only the TLS server name is checked.",
      '',
      "In a sandbox started inside a supervised one, its HTTP rules, wildcard rules and credentials are checked by the outer sandbox's proxy along with the outer's own: a request must pass every level (a deny of any wins), and the refusal names the level (0 is the outermost). Its credentials are read by its own launcher and added to its own requests only; it trusts the outer's CA (`httpCa` is refused there). The outer sandbox must have a proxy (an HTTP or wildcard rule) for it to start.",
    ].join('\n'),
  }),
  httpDeny: field({
    kind: list(httpRuleSpec),
    default: [] as string[],
    combine: 'append',
    setter: append<string>(),
    flags: [
      {
        long: 'http-deny',
        value: 'RULE',
        help: "refuse HTTP(S) requests matching 'METHOD HOST/PATH' (checked before --http-allow)",
      },
    ],
    profile: { section: 'http', key: 'deny' },
    doc: 'HTTP requests the sandbox may not make, checked before httpAllow (same form).',
  }),
  httpCa: field({
    kind: nullable(existingPath),
    default: null as string | null,
    combine: 'replace',
    setter: set<string>(),
    flags: [
      {
        long: 'http-ca',
        value: 'CERT',
        help: 'the CA certificate (PEM) HTTPS interception signs with (default: one made per sandbox)',
      },
    ],
    profile: { section: 'http', key: 'ca' },
    doc: "The CA certificate (PEM) that signs the certificates HTTPS interception shows the sandbox; without it, a CA is made for each sandbox, its key only in the supervisor's memory.",
  }),
  httpKey: field({
    kind: nullable(existingPath),
    default: null as string | null,
    combine: 'replace',
    setter: set<string>(),
    flags: [{ long: 'http-key', value: 'KEY', help: 'the private key (PEM) of --http-ca' }],
    profile: { section: 'http', key: 'key' },
    doc: 'The private key (PEM) of httpCa.',
  }),
  credentials: field({
    kind: credentialSources,
    default: {} as Record<string, string>,
    combine: 'merge',
    setter: custom(
      'credential',
      'name, source',
      (current, [name, source]: [name: string, source: string]) => ({
        ...(current as object),
        [name]: source,
      }),
    ),
    flags: [
      {
        long: 'credential',
        value: 'NAME=SOURCE',
        help: 'a secret the proxy may add to requests (--http-auth): NAME=env:VARIABLE or NAME=file:PATH',
      },
    ],
    profile: { section: 'http', key: 'credentials' },
    doc: 'Secrets by name, read by the supervisor when the sandbox starts (`env:VARIABLE` from its environment, `file:PATH`); the sandbox never has them: httpAuth adds them to its requests.',
  }),
  httpAuth: field({
    kind: list(httpAuthSpec),
    default: [] as string[],
    combine: 'append',
    setter: append<string>(),
    flags: [
      {
        long: 'http-auth',
        value: 'RULE',
        help: "add a credential to HTTPS requests matching RULE: 'METHOD HOST/PATH bearer|basic|header:NAME CREDENTIAL'",
      },
    ],
    profile: { section: 'http', key: 'auth' },
    doc: 'Credentials added to the HTTPS requests matching a rule, after they were allowed: `Authorization: Bearer`, `Authorization: Basic` (the secret is USER:PASSWORD) or a header of that name, replacing what the request had.',
    details:
      'Only requests sent over TLS whose server certificate the proxy verified for the host get a credential; a plain HTTP request matching the rule is sent without it. The first matching entry for a header wins.',
  }),
};

export type Fields = typeof FIELDS;
export type FieldName = keyof Fields;
export type AnyField = FieldSpec<unknown, unknown[]>;

/** The entries in table order. */
export const FIELD_NAMES = Object.keys(FIELDS) as FieldName[];

export function fieldSpec(name: FieldName): AnyField {
  return FIELDS[name] as unknown as AnyField;
}

type ValueOf<F> = F extends { readonly default: infer T } ? T : never;
type DeepReadonly<T> = T extends (infer I)[]
  ? readonly DeepReadonly<I>[]
  : T extends object
    ? { readonly [K in keyof T]: DeepReadonly<T[K]> }
    : T;

/**
 * What a sandbox may do: plain, immutable data that round-trips through JSON
 * (`JSON.stringify(policy)` and `parsePolicy`). One field per entry of
 * {@link FIELDS}; docs/policy.md describes each.
 */
export type Policy = { readonly [K in FieldName]: DeepReadonly<ValueOf<Fields[K]>> };
