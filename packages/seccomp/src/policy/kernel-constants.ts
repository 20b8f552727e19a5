// Kernel constants the sandbox filter needs that @sandlock/sys does not export yet. They belong
// there; they are the same on x86_64 and aarch64 (asm-generic values).

// include/uapi/linux/sched.h
export const CLONE_THREAD = 0x00010000;
export const CLONE_NEWNS = 0x00020000;
export const CLONE_NEWCGROUP = 0x02000000;
export const CLONE_NEWUTS = 0x04000000;
export const CLONE_NEWIPC = 0x08000000;
export const CLONE_NEWUSER = 0x10000000;
export const CLONE_NEWPID = 0x20000000;
export const CLONE_NEWNET = 0x40000000;

// include/uapi/asm-generic/ioctls.h
export const TIOCSTI = 0x5412;
export const TIOCLINUX = 0x541c;

// include/uapi/linux/prctl.h
export const PR_SET_SECUREBITS = 28;
/** "Ya" "ma": the value is ASCII, see prctl(2). */
export const PR_SET_PTRACER = 0x59616d61;

// include/linux/socket.h
export const AF_NETLINK = 16;
export const AF_PACKET = 17;

// include/linux/net.h
export const SOCK_DGRAM = 2;
export const SOCK_RAW = 3;
/** Obsolete; socket(AF_INET, SOCK_PACKET) still makes a packet socket, see rules below. */
export const SOCK_PACKET = 10;
/**
 * The low bits of socket(2)'s `type` are the type; SOCK_NONBLOCK and SOCK_CLOEXEC live above
 * (__sys_socket() in net/socket.c masks with SOCK_TYPE_MASK and refuses other flag bits).
 */
export const SOCK_TYPE_MASK = 0xf;

// include/uapi/linux/wait.h
export const WNOHANG = 0x00000001;
export const WNOWAIT = 0x01000000;
