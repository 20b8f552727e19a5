// The socket tables of /proc/<pid>/net (so /proc/net and /proc/self/net
// too) cut to the sandbox's own sockets, as pure functions: no I/O here, so
// they are tested without a sandbox. A later step (ports a sandbox sees
// under other numbers) works on the text this gives.

/** The files of /proc/<pid>/net that list sockets, one line each. */
export const NET_SOCKET_FILES = [
  'tcp',
  'tcp6',
  'udp',
  'udp6',
  'udplite',
  'udplite6',
  'raw',
  'raw6',
  'icmp',
  'icmp6',
  'unix',
  'packet',
  'netlink',
] as const;

export type NetSocketFile = (typeof NET_SOCKET_FILES)[number];

/**
 * The column (counting from 0, split on blanks) that holds a line's socket
 * inode: `sl local rem st tx:rx tr:when retrnsmt uid timeout inode …`
 * (tcp4_seq_show() in net/ipv4/tcp_ipv4.c, udp4_format_sock() in
 * net/ipv4/udp.c, raw_sock_seq_show() in net/ipv4/raw.c, ping_v4_seq_show()
 * for icmp, and their IPv6 forms), `Num RefCount Protocol Flags Type St
 * Inode Path` (unix_seq_show(), net/unix/af_unix.c), `sk RefCnt Type Proto
 * Iface R Rmem User Inode` (packet_seq_show(), net/packet/af_packet.c), `sk
 * Eth Pid Groups Rmem Wmem Dump Locks Drops Inode` (netlink_seq_show(),
 * net/netlink/af_netlink.c).
 */
function inodeColumn(file: NetSocketFile): number {
  if (file === 'unix') return 6;
  if (file === 'packet') return 8;
  return 9;
}

/**
 * A unix line starts with the socket's address, `%pK: ` (unix_seq_show());
 * its path is written raw, so a path holding a newline goes on over the
 * next line, which then belongs to the same socket.
 */
const UNIX_RECORD = /^[0-9a-fA-F]+: /;

/**
 * A socket table (text of one character per byte) with its header line and
 * only the lines of sockets whose inode is in `inodes`, byte-identical and
 * in order. Every other line is dropped.
 */
export function filterSocketTable(
  file: NetSocketFile,
  text: string,
  inodes: ReadonlySet<string>,
): string {
  const lines = text.match(/[^\n]*\n|[^\n]+$/g) ?? [];
  const out: string[] = lines.length > 0 ? [lines[0]!] : [];
  const column = inodeColumn(file);
  let keeping = false;
  for (const line of lines.slice(1)) {
    if (file === 'unix' && !UNIX_RECORD.test(line)) {
      if (keeping) out.push(line);
      continue;
    }
    const inode = line.trim().split(/\s+/)[column];
    keeping = inode !== undefined && inodes.has(inode);
    if (keeping) out.push(line);
  }
  return out.join('');
}

/** The socket inodes among a process's descriptor links (`socket:[INODE]`). */
export function socketInodes(links: Iterable<string>, into = new Set<string>()): Set<string> {
  for (const link of links) {
    const match = /^socket:\[(\d+)\]$/.exec(link);
    if (match !== null) into.add(match[1]!);
  }
  return into;
}
