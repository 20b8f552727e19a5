// The control data of a sendmsg on a Unix socket, made by the worker for
// the caller: what the kernel would have taken from the caller, and nothing
// of the supervisor's.
//
// - SCM_RIGHTS carries descriptor numbers of the sender's table: each is
//   taken from the caller (pidfd_getfd), never read as one of this
//   process's (the reference sent its supervisor's: its §7.20). A number
//   the caller does not have open fails with EBADF, as scm_fp_copy() does;
//   more than SCM_MAX_FD (253) in one message with EINVAL. A number given twice
//   is taken once: the receiver gets one descriptor per entry either way
//   (scm_detach_fds()), and the reaper that sends them holds only as many
//   as the caller has open (it has the caller's RLIMIT_NOFILE).
// - SCM_CREDENTIALS must be what the caller could send (scm_check_creds()
//   in net/core/scm.c, for a caller without capabilities): its own thread
//   group, one of its real, effective or saved ids; else EPERM. Without
//   one, the kernel attaches the sender's for a receiver with SO_PASSCRED
//   (maybe_add_creds() in net/unix/af_unix.c), which would name the
//   supervisor: the caller's are attached instead. Sending another pid
//   takes CAP_SYS_ADMIN, which the send keeps for that alone (the rest of
//   the control data is what is written here).
// - Other SOL_SOCKET records are refused (EINVAL), as __scm_send() refuses
//   them on a Unix socket; records of other levels are ignored by it, and
//   dropped here.
import type { HandlerContext } from '@sandlock/dispatch/module';
import { CallError } from '@sandlock/dispatch/module';
import {
  CMSGHDR_SIZE,
  close,
  cmsgLen,
  cmsgSpace,
  decodeCmsghdr,
  ERRNO,
  encodeCmsghdrInto,
  FDS_PER_MESSAGE_MAX,
  SCM_CREDENTIALS,
  SCM_RIGHTS,
  SOL_SOCKET,
} from '@sandlock/sys';
import type { CallerStatus } from './caller.js';

const { EINVAL, EPERM } = ERRNO;

/** ucred: pid, uid, gid (ints). */
const UCRED_SIZE = 12;

/** Control data rewritten for this process's send, and the duplicates it holds. */
export interface Translated {
  readonly control: Buffer;
  /**
   * Descriptors taken from the caller, in the message's order (a number the
   * caller gave twice is the same copy twice): close each once after the send.
   */
  readonly fds: number[];
  /** Whether the caller gave SCM_CREDENTIALS (its own) itself. */
  readonly credentials: boolean;
}

function record(type: number, data: Buffer): Buffer {
  const out = Buffer.alloc(cmsgSpace(data.length));
  encodeCmsghdrInto(out, 0, { len: BigInt(cmsgLen(data.length)), level: SOL_SOCKET, type });
  data.copy(out, CMSGHDR_SIZE);
  return out;
}

function credentials(pid: number, uid: number, gid: number): Buffer {
  const data = Buffer.alloc(UCRED_SIZE);
  data.writeInt32LE(pid, 0);
  data.writeUInt32LE(uid >>> 0, 4);
  data.writeUInt32LE(gid >>> 0, 8);
  return record(SCM_CREDENTIALS, data);
}

/**
 * `control` (the caller's, copied) for this process to send on a Unix
 * socket, or an errno. `attach`: add the caller's credentials when it gave
 * none (this process can send them: it has CAP_SYS_ADMIN).
 */
export function translateUnixControl(
  ctx: HandlerContext,
  control: Buffer | null,
  caller: CallerStatus,
  attach: boolean,
): Translated | number {
  const records: Buffer[] = [];
  const fds: number[] = [];
  const copies = new Map<number, number>();
  let credentialed = false;
  let given = false;
  const fail = (errno: number) => {
    for (const fd of copies.values()) close(fd);
    return errno;
  };
  let offset = 0;
  const length = control?.length ?? 0;
  // for_each_cmsghdr(): records while a header fits; CMSG_OK() for each.
  while (control !== null && offset + CMSGHDR_SIZE <= length) {
    const header = decodeCmsghdr(control, offset);
    const size = Number(header.len);
    if (size < CMSGHDR_SIZE || offset + size > length) return fail(EINVAL);
    const data = control.subarray(offset + CMSGHDR_SIZE, offset + size);
    offset += cmsgSpace(size - CMSGHDR_SIZE);
    if (header.level !== SOL_SOCKET) continue;
    if (header.type === SCM_RIGHTS) {
      const mine = Buffer.alloc(data.length - (data.length % 4));
      if (fds.length + Math.floor(data.length / 4) > FDS_PER_MESSAGE_MAX) return fail(EINVAL);
      for (let at = 0; at + 4 <= data.length; at += 4) {
        try {
          const number = data.readInt32LE(at);
          let fd = copies.get(number);
          if (fd === undefined) {
            fd = ctx.getFd(number);
            copies.set(number, fd);
          }
          fds.push(fd);
          mine.writeInt32LE(fd, at);
        } catch (error) {
          if (error instanceof CallError) return fail(error.errno);
          fail(0);
          throw error;
        }
      }
      records.push(record(SCM_RIGHTS, mine));
    } else if (header.type === SCM_CREDENTIALS) {
      if (size !== cmsgLen(UCRED_SIZE)) return fail(EINVAL);
      const pid = data.readInt32LE(0);
      const uid = data.readUInt32LE(4);
      const gid = data.readUInt32LE(8);
      const own = pid === caller.tgid;
      if (
        !own ||
        !caller.uids.slice(0, 3).includes(uid) ||
        !caller.gids.slice(0, 3).includes(gid)
      ) {
        return fail(EPERM);
      }
      // The kernel lets a sender claim its own pid only; this process is not the caller.
      if (!attach) return fail(EPERM);
      credentialed = true;
      given = true;
      records.push(credentials(pid, uid, gid));
    } else {
      return fail(EINVAL);
    }
  }
  if (!credentialed && attach) {
    records.push(credentials(caller.tgid, caller.uids[0]!, caller.gids[0]!));
  }
  return { control: Buffer.concat(records), fds, credentials: given };
}
