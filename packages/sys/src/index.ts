export { type RemoteAccess, remoteAccess } from './access.js';
export { cpuAffinityOf, setCpuAffinity } from './affinity.js';
export {
  BROKER_DATA_MAX,
  BROKER_PATCHES_MAX,
  type BrokerArg,
  BrokerError,
  type BrokerPatch,
  type BrokerReply,
  type BrokerRequest,
  brokerCall,
  brokerSocketPair,
} from './broker.js';
export { type BrokeredMessage, brokeredPayloadRoom, brokeredSendmsg } from './broker-sendmsg.js';
export { type CapabilitySets, setThreadCapabilities, threadCapabilities } from './caps.js';
export * from './constants.js';
export { cpuMask } from './cpu-mask.js';
export {
  type CallerIds,
  type Credentials,
  callAsCaller,
  credentialsOf,
  sameIds,
  setCallerIds,
  withCallerCapabilities,
} from './credentials.js';
export { ERESTARTSYS, ERRNO, type ErrnoName, errnoNumber, MAX_ERRNO } from './errno.js';
export { errnoMessage, errnoName, SysError } from './errors.js';
export * from './fs-constants.js';
export * from './io.js';
export {
  addressOf,
  close,
  closeRange,
  fcntl,
  flock,
  ioctl,
  memfdCreate,
  openAt,
  openPath,
  pidfdGetfd,
  pidfdOpen,
  pidfdSendSignal,
  rawSyscall,
  type SyscallArg,
  syscall,
  trySyscall,
} from './libc.js';
export { noAccessReopen, readOnlyFile, readOnlyReopen, sealedMemfd } from './memfd.js';
export {
  forgetProcessMemory,
  MAX_ARG_STRLEN,
  readCString,
  readCStringBytes,
  readMemory,
  readMemoryPartial,
  writeMemory,
} from './memory.js';
export { detachMount, mountTmpfs, type TmpfsOptions } from './mount.js';
export { pageSize } from './page.js';
export { bytePath, isSymlink, pathWithin } from './paths.js';
export * from './pidfd-info.js';
export {
  childrenOfThread,
  descendantsOf,
  descriptorsOf,
  fieldNumber,
  hasChildrenFiles,
  isDescendantOf,
  ProcReadError,
  parentOf,
  processOf,
  readProc,
  startTimeOf,
  statusMemory,
  type TreeEntry,
  threadsOf,
  walkTree,
  writeProc,
} from './proc.js';
export * from './ptrace.js';
export { getRlimit, type Rlimit, setRlimit } from './rlimit.js';
export {
  F_GETPIPE_SZ,
  holdsPid,
  IPPROTO_ICMP,
  IPPROTO_ICMPV6,
  IPPROTO_TCP,
  IPPROTO_UDP,
  IPPROTO_UDPLITE,
  peerPidfd,
  pidOfPidfd,
  SIOCINQ,
  SIOCOUTQ,
  SO_DOMAIN,
  SO_ERROR,
  SO_PEERCRED,
  SO_PEERPIDFD,
  SO_PROTOCOL,
  SO_RCVBUF,
  SO_RCVBUFFORCE,
  SO_SNDBUF,
  SO_SNDBUFFORCE,
  SO_SNDTIMEO,
  SO_TYPE,
  writableNow,
} from './sockets.js';
export * from './structs/index.js';
export * from './stub/index.js';
export * from './syscalls/index.js';
export {
  O_NOCTTY,
  openPty,
  type Pty,
  setWindowSize,
  TIOCGPTN,
  TIOCSCTTY,
  TIOCSPTLCK,
  TIOCSWINSZ,
} from './terminal.js';
export { Walked, type WalkKind, type WalkOptions, walkPath } from './walk.js';
