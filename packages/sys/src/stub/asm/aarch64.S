// Sandlock exec stub, aarch64 (GNU as).
//
// Reads a launch script from fd 3 into the RW segment at SCRIPT_BASE and runs
// its steps as raw syscalls. The layout is described in ../script.ts; the
// machine code assembled from this file is committed in ../code.ts
// (regenerate with `node tools/stub/assemble.mjs --write`).
//
// Syscall ABI: x8 = nr, x0..x5 = arguments, `svc #0`, result in x0; the
// kernel preserves every other general register (arch/arm64/kernel/entry.S
// saves and restores them in pt_regs). Registers kept across the whole run:
//   x19 = SCRIPT_BASE          x20 = bytes wanted so far (32, then total_size)
//   x21 = bytes read so far    x22 = step count
//   x23 = address of the current step, x24 = its index
// A FORK_REAPER step turns the parent of its fork into the sandbox's reaper
// (see `reaper` below), which reuses x19..x24 for registers of its own; a
// FORK_ZYGOTE step turns the child of its fork into the sandbox's zygote (see
// `zygote`), which does too.

        .text
        .globl _start

        .equ SCRIPT_BASE,       0x10000000
        .equ SCRIPT_CAPACITY,   0x800000            // 8 MiB, the RW segment's memsz
        .equ SCRIPT_MAGIC,      0x3130425554534c53  // "SLSTUB01" read as a u64 LE
        .equ HEADER_SIZE,       32
        .equ STEP_SIZE,         80
        .equ SCRIPT_FD,         3

        .equ SYS_dup3,          24
        .equ SYS_close,         57
        .equ SYS_read,          63
        .equ SYS_write,         64
        .equ SYS_ppoll,         73
        .equ SYS_exit_group,    94
        .equ SYS_kill,          129
        .equ SYS_rt_sigaction,  134
        .equ SYS_rt_sigprocmask, 135
        .equ SYS_prctl,         167
        .equ SYS_getpid,        172
        .equ SYS_getppid,       173
        .equ SYS_sendmsg,       211
        .equ SYS_recvmsg,       212
        .equ SYS_clone,         220
        .equ SYS_wait4,         260
        .equ SYS_prlimit64,     261
        .equ SYS_close_range,   436

        // Header fields: magic at 0, then
        .equ H_TOTAL_SIZE,      8                   // followed by count at 16
        .equ H_ERROR_FD,        24
        // Step fields: nr, a0..a5 at 0..48, then
        .equ S_FLAGS,           56                  // followed by store_address at 64
        .equ S_EXPECT,          72
        .equ FATAL_ON_ERROR_BIT,     0
        .equ FATAL_UNLESS_EQUAL_BIT, 1
        .equ FORK_REAPER_BIT,   2
        .equ FORK_ZYGOTE_BIT,   3

        // ReaperParams fields (the address is a FORK_REAPER step's `expect`)
        .equ P_POLLFDS,         0                   // -> 3 x struct pollfd: signalfd, pidfd, broker
        .equ P_KILL_TARGET,     8                   // pid argument of kill(2)
        .equ P_SIGMAP,          16                  // -> u8[65]: signal received -> signal sent
        .equ P_SIGINFO,         24                  // -> 128 bytes: struct signalfd_siginfo
        .equ P_CLOSE_LAST,      32                  // close_range(0, this, 0) first, unless 0
        .equ P_ZERO,            40                  // 16 zero bytes: empty sigset, rlimit {0, 0}
        .equ P_STATUS,          56                  // wait4 status word
        .equ P_BROKER,          64                  // -> the request buffer of the broker block
        .equ SSI_PID,           12                  // in struct signalfd_siginfo (signo at 0)

        // ZygoteParams fields (the address is a FORK_ZYGOTE step's `expect`)
        .equ Z_SOCKET,          0                   // the zygote's end of its socket
        .equ Z_PARENT,          8                   // the program's pid
        .equ Z_MSG,             16                  // -> struct msghdr: iov -> 1 byte, control -> 32 bytes
        .equ Z_BLOCKED,         24                  // -> sigset: every signal
        .equ Z_SIGACTION,       32                  // -> struct sigaction: SIG_IGN
        .equ Z_FAILURE,         40                  // -> 16 bytes: a failure record
        .equ MSG_CONTROL,       32                  // in struct msghdr
        .equ ZYGOTE_CONTROL,    32                  // CMSG_LEN(4 * 4) = CMSG_SPACE(4 * 4)

        // Broker block (BROKER_BLOCK in ../script.ts); the code addresses it
        // from its request buffer, which comes last, at negative offsets
        .equ B_RECV_CONTROL,    0                   // struct cmsghdr, then up to 253 int fds
        .equ B_RECV_MSG,        1032                // struct msghdr: iov -> {request, 8 KiB}
        .equ B_SEND_MSG,        1088                // struct msghdr: iov -> {request, B_SEND_LEN}
        .equ B_SEND_LEN,        1168                // iov_len of the send iovec
        .equ B_SEND_FD,         1192                // the int of the send SCM_RIGHTS record
        .equ B_CALL,            1200                // nr, a0..a5 as the syscall gets them
        .equ B_REQUEST,         1256
        .equ MSG_CONTROLLEN,    40                  // in struct msghdr
        .equ MSG_FLAGS,         48
        .equ CMSG_DATA,         16                  // after struct cmsghdr
        .equ RECV_CONTROL_SIZE, 1032                // CMSG_SPACE(4 * 253)
        .equ SEND_CONTROL_SIZE, 24                  // CMSG_SPACE(4)
        // Request fields (BROKER_REQUEST): nr (the result in the reply), args at 8
        .equ R_KINDS,           56                  // u8 each: 0 literal, 1 fd index, 2 offset
        .equ R_PATCHES,         62                  // u16: patches, {u32 at, u32 kind} each at R_DATA
        .equ R_FLAGS,           64
        .equ R_DATA,            72
        .equ RETURNS_FD_BIT,    0

        .equ EINTR,             4
        .equ EBADF,             9
        .equ EAGAIN,            11
        .equ EINVAL,            22
        .equ MSG_CTRUNC_BIT,    3
        .equ MSG_TRUNC_BIT,     5
        .equ MSG_DONTWAIT,      0x40
        .equ MSG_NOSIGNAL,      0x4000
        .equ MSG_CMSG_CLOEXEC,  0x40000000
        .equ POLLIN,            1
        .equ WNOHANG,           1
        .equ __WALL,            0x40000000
        .equ SIGKILL,           9
        .equ SIGCHLD,           17
        .equ SIG_SETMASK,       2
        .equ PR_SET_PDEATHSIG,  1
        .equ O_CLOEXEC,         0x80000
        .equ RLIMIT_CORE,       4

_start:
run_script:     // also where a zygote's child starts over
        mov     x19, #SCRIPT_BASE       // a single movz
        mov     x20, #HEADER_SIZE
        mov     x21, #0
        bl      read_exact              // exactly the header, nothing past it

        // Validate the header; a bad one exits without a report.
        ldr     x0, [x19]
        ldr     x1, script_magic
        cmp     x0, x1
        b.ne    exit
        ldp     x20, x22, [x19, #H_TOTAL_SIZE]  // total_size, count
        mov     x1, #SCRIPT_CAPACITY
        cmp     x22, x1                 // bounds count first, so count * 80
        b.hi    exit                    // below cannot overflow
        cmp     x20, x1                 // total_size <= capacity
        b.hi    exit
        mov     x2, #STEP_SIZE
        mov     x3, #HEADER_SIZE
        madd    x2, x22, x2, x3
        cmp     x20, x2                 // total_size >= 32 + count * 80
        b.lo    exit
        bl      read_exact              // the rest of the script

        add     x23, x19, #HEADER_SIZE
        mov     x24, #0
next_step:
        cmp     x24, x22
        b.hs    exit                    // ran off the end: the execve did not happen
        ldp     x8, x0, [x23]           // nr, a0
        ldp     x1, x2, [x23, #16]
        ldp     x3, x4, [x23, #32]
        ldr     x5, [x23, #48]
        svc     #0
        ldp     x9, x10, [x23, #S_FLAGS]  // flags, store_address
        cbz     x10, 1f
        str     x0, [x10]               // store the full 64-bit result
1:      tbz     x9, #FORK_REAPER_BIT, 2f
        tbnz    x0, #63, fail           // the fork failed
        cbnz    x0, reaper              // the parent; the child goes on
2:      tbz     x9, #FORK_ZYGOTE_BIT, 5f
        cbz     x0, zygote              // the child; the parent goes on, also when the fork failed
5:      tbz     x9, #FATAL_ON_ERROR_BIT, 3f
        cmn     x0, #4095               // carry set iff x0 >= -4095 unsigned,
        b.hs    fail                    // i.e. -4095..-1, a -errno
3:      tbz     x9, #FATAL_UNLESS_EQUAL_BIT, 4f
        ldr     x11, [x23, #S_EXPECT]
        cmp     x0, x11
        b.ne    fail
4:      add     x23, x23, #STEP_SIZE
        add     x24, x24, #1
        b       next_step

fail:   // Report {u64 step_index, u64 raw_result} from SCRIPT_BASE over the header.
        stp     x24, x0, [x19]
        ldr     x0, [x19, #H_ERROR_FD]
        mov     x1, x19
        mov     x2, #16
        mov     x8, #SYS_write
        svc     #0
exit:
        mov     x0, #127
exit_x0:
        mov     x8, #SYS_exit_group
        svc     #0

// Read from fd 3 into SCRIPT_BASE + x21 until x21 == x20, asking each time
// for just the bytes still missing. EOF or an error before that: exit(127).
read_exact:
        cmp     x21, x20
        b.hs    read_done
        mov     x0, #SCRIPT_FD
        add     x1, x19, x21
        sub     x2, x20, x21
        mov     x8, #SYS_read
        svc     #0
        cmp     x0, #0
        b.le    exit
        add     x21, x21, x0
        b       read_exact
read_done:
        ret

// The parent of a FORK_REAPER step's fork, a child subreaper: reaps every
// process of the sandbox, forwards signals (read from a signalfd) to it, kills
// it when the pidfd of Node polls readable, serves the supervisor's requests
// on the broker socket, and once no child is left exits like its first child
// did. Registers:
//   x19 = ReaperParams         x20 = first child's pid    x21 = its wait status
//   x23 = pollfds              x24 = our own pid
reaper:
        ldr     x19, [x23, #S_EXPECT]
        mov     x20, x0
        ldr     x23, [x19, #P_POLLFDS]
        mov     x8, #SYS_getpid
        svc     #0
        mov     x24, x0
        ldr     x1, [x19, #P_CLOSE_LAST]
        cbz     x1, 1f
        mov     x0, #0                  // close_range(0, close_last, 0)
        mov     x2, #0
        mov     x8, #SYS_close_range
        svc     #0
1:      mov     x21, #(127 << 8)        // as if exit(127), should it never be reaped

reap:   // wait4(-1, &status, WNOHANG | __WALL, NULL) until nothing is left to reap
        mov     x0, #-1
        add     x1, x19, #P_STATUS
        mov     x2, #__WALL
        orr     x2, x2, #WNOHANG
        mov     x3, #0
        mov     x8, #SYS_wait4
        svc     #0
        cbz     x0, wait                // children left, none has ended
        tbnz    x0, #63, 2f
        cmp     x0, x20
        b.ne    reap
        ldr     w21, [x19, #P_STATUS]   // the first child's status
        b       reap
2:      cmn     x0, #EINTR
        b.eq    reap

finish: // No child left (ECHILD): end as the first child did.
        ubfx    x0, x21, #8, #8         // its exit code
        ands    x20, x21, #0x7f         // or the signal that killed it
        b.eq    exit_x0
        mov     x0, #0                  // prlimit64(0, RLIMIT_CORE, {0, 0}, NULL): no core of ours
        mov     x1, #RLIMIT_CORE
        add     x2, x19, #P_ZERO
        mov     x3, #0
        mov     x8, #SYS_prlimit64
        svc     #0
        mov     x0, #SIG_SETMASK        // rt_sigprocmask(SIG_SETMASK, {}, NULL, 8)
        add     x1, x19, #P_ZERO
        mov     x2, #0
        mov     x3, #8
        mov     x8, #SYS_rt_sigprocmask
        svc     #0
        mov     x0, x24                 // kill(getpid(), signal)
        mov     x1, x20
        mov     x8, #SYS_kill
        svc     #0
        add     x0, x20, #128           // still here (an ignored signal): exit(128 + signal)
        b       exit_x0

wait:   // ppoll(pollfds, 3, NULL, NULL, 0), with events = POLLIN, revents = 0 in the
        // two slots steps stored fds in; a negative fd is skipped (poll(2))
        mov     w0, #POLLIN
        str     w0, [x23, #4]
        str     w0, [x23, #12]
        mov     x0, x23
        mov     x1, #3
        mov     x2, #0
        mov     x3, #0
        mov     x4, #0
        mov     x8, #SYS_ppoll
        svc     #0
        tbnz    x0, #63, reap           // EINTR
        ldrh    w0, [x23, #22]          // broker revents
        cbz     w0, 1f
        bl      broker
1:      ldrh    w0, [x23, #14]          // pidfd revents: Node is gone
        cbz     w0, 3f
        mov     w0, #-1                 // stop watching it
        str     w0, [x23, #8]
        mov     x1, #SIGKILL
        bl      kill_sandbox
3:      ldrh    w0, [x23, #6]           // signalfd revents
        cbz     w0, reap

drain:  // read(signalfd, siginfo, 128) until it has nothing more (non-blocking)
        ldr     w0, [x23]
        ldr     x1, [x19, #P_SIGINFO]
        mov     x2, #128
        mov     x8, #SYS_read
        svc     #0
        cmp     x0, #0
        b.le    reap
        ldr     w2, [x1, #SSI_PID]
        cmp     w2, w24                 // sent by ourselves (kill_target includes us)
        b.eq    drain
        ldr     w2, [x1]                // ssi_signo
        cmp     w2, #65
        b.hs    drain
        ldr     x3, [x19, #P_SIGMAP]
        ldrb    w1, [x3, x2]
        cbz     w1, drain               // not forwarded
        bl      kill_sandbox
        b       drain

kill_sandbox:   // kill(kill_target, x1)
        ldr     x0, [x19, #P_KILL_TARGET]
        mov     x8, #SYS_kill
        svc     #0
        ret

// One request on the broker socket (BROKER_REQUEST in ../script.ts): receive
// it with its fds, run the syscall it names with fd indexes and data offsets
// replaced, send the message back with the result over its first u64 (and the
// result fd if asked), close the fds received and the one sent. Registers
// (the kernel keeps them across svc): x9 = the request buffer, x10 = the
// message length, x11 = fds received, x12 = control data sent, x15 -> the fds
// received; x13, x14 scratch.
broker:
        ldr     x9, [x19, #P_BROKER]    // recvmsg(2) leaves msg_controllen at what it filled
        mov     x0, #RECV_CONTROL_SIZE
        str     x0, [x9, #(B_RECV_MSG + MSG_CONTROLLEN - B_REQUEST)]
        ldr     w0, [x23, #16]          // recvmsg(broker, &recv_msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT)
        sub     x1, x9, #(B_REQUEST - B_RECV_MSG)
        mov     x2, #MSG_CMSG_CLOEXEC
        orr     x2, x2, #MSG_DONTWAIT
        mov     x8, #SYS_recvmsg
        svc     #0
        mov     x10, x0
        cmp     x0, #0
        b.gt    2f
        cmn     x0, #EAGAIN
        b.eq    1f
        cmn     x0, #EINTR
        b.eq    1f
        mov     w1, #-1                 // the supervisor is gone (0) or an error: stop serving
        str     w1, [x23, #16]
        cbz     x0, 2f                  // (an empty last message may still bring fds)
1:      ret
2:      str     x10, [x9, #(B_SEND_LEN - B_REQUEST)]  // the reply is as long as the request
        sub     x15, x9, #(B_REQUEST - B_RECV_CONTROL - CMSG_DATA)
        ldr     x11, [x9, #(B_RECV_MSG + MSG_CONTROLLEN - B_REQUEST)]
        cbz     x11, 3f                 // no control data: no fds, else cmsg_len = 16 + 4 * fds
        ldr     x11, [x15, #-CMSG_DATA] // (SCM_RIGHTS, the only record
        sub     x11, x11, #CMSG_DATA    // a unix socket sends us)
        lsr     x11, x11, #2
3:      ldr     w0, [x9, #(B_RECV_MSG + MSG_FLAGS - B_REQUEST)]
        tbnz    w0, #MSG_TRUNC_BIT, invalid
        tbnz    w0, #MSG_CTRUNC_BIT, invalid    // fds that did not fit are closed by the
                                                // kernel (scm_detach_fds in net/core/scm.c)
        cmp     x10, #R_DATA
        b.lo    invalid
        ldrh    w13, [x9, #R_PATCHES]   // x13 = patches of the message, read as
        add     x14, x9, #R_DATA        // arguments are (the table must fit)
        add     x0, x13, #(R_DATA / 8)
        cmp     x10, x0, lsl #3
        b.lo    invalid
patch:  cbz     x13, args
        sub     x13, x13, #1
        add     x2, x14, x13, lsl #3
        ldp     w0, w1, [x2]            // where (8 bytes must fit), kind
        add     x2, x0, #8
        cmp     x2, x10
        b.hi    invalid
        add     x2, x9, x0              // x2 = where
        cmp     w1, #1
        b.ne    8f
        ldr     w0, [x2]                // 1: a u32 index into the fds received
        cmp     x0, x11
        b.hs    bad_fd
        ldr     w0, [x15, x0, lsl #2]
        str     w0, [x2]
        b       patch
8:      cmp     w1, #2
        b.ne    invalid
        ldr     x0, [x2]                // 2: a u64 offset into the message
        cmp     x0, x10
        b.hs    invalid
        add     x0, x9, x0
        str     x0, [x2]
        b       patch
args:   ldr     x0, [x9]
        str     x0, [x9, #(B_CALL - B_REQUEST)]  // nr
        mov     x13, #0                 // argument index
arg:    add     x14, x9, x13, lsl #3
        ldr     x0, [x14, #8]
        add     x14, x9, x13
        ldrb    w1, [x14, #R_KINDS]
        cbz     w1, 5f                  // 0: literal
        cmp     w1, #2
        b.hi    invalid
        b.lo    4f
        cmp     x0, x10                 // 2: an offset into the message
        b.hs    invalid
        add     x0, x9, x0
        b       5f
4:      cmp     x0, x11                 // 1: an index into the fds received
        b.hs    bad_fd
        ldr     w0, [x15, x0, lsl #2]
5:      add     x14, x9, x13, lsl #3
        str     x0, [x14, #(B_CALL + 8 - B_REQUEST)]
        add     x13, x13, #1
        cmp     x13, #6
        b.lo    arg
        sub     x14, x9, #(B_REQUEST - B_CALL)
        ldp     x8, x0, [x14]
        ldp     x1, x2, [x14, #16]
        ldp     x3, x4, [x14, #32]
        ldr     x5, [x14, #48]
        svc     #0
        b       reply
bad_fd: mov     x0, #-EBADF
        b       reply
invalid:
        mov     x0, #-EINVAL
reply:  str     x0, [x9]                // the result over nr
        str     w0, [x9, #(B_SEND_FD - B_REQUEST)]
        mov     x12, #0                 // control data: none, or the result fd if asked
        tbnz    x0, #63, 6f
        ldrb    w1, [x9, #R_FLAGS]
        tbz     w1, #RETURNS_FD_BIT, 6f
        mov     x12, #SEND_CONTROL_SIZE
6:      str     x12, [x9, #(B_SEND_MSG + MSG_CONTROLLEN - B_REQUEST)]
        ldr     w0, [x23, #16]          // sendmsg(broker, &send_msg, MSG_NOSIGNAL | MSG_DONTWAIT):
                                        // lost if the supervisor queued more than it reads
        sub     x1, x9, #(B_REQUEST - B_SEND_MSG)
        mov     x2, #(MSG_NOSIGNAL | MSG_DONTWAIT)
        mov     x8, #SYS_sendmsg
        svc     #0
        mov     x8, #SYS_close
        cbz     x12, 7f
        ldr     w0, [x9, #(B_SEND_FD - B_REQUEST)]
        svc     #0
7:      cbz     x11, 1b
        sub     x11, x11, #1
        ldr     w0, [x15, x11, lsl #2]
        svc     #0
        b       7b

// The child of a FORK_ZYGOTE step (forked after the program's whole
// confinement, so in its Landlock domains and under its seccomp filters):
// forks a process for each request on its socket, which then runs a launch
// script of its own, as the stub does from _start. It holds only its socket
// (as fd 3), blocks every signal, dies with the program (PR_SET_PDEATHSIG)
// and leaves its children to the kernel to reap (SIGCHLD ignored, sigaction(2)).
// A request is one byte with exactly four descriptors, which land at 0, 1, 2
// and 4: the child's stdin, stdout, stderr and the socket it reads its script
// from (then as fd 3) and reports on. A fork that fails is reported there as a
// failure of step 0. x19 = ZygoteParams.
zygote:
        ldr     x19, [x23, #S_EXPECT]
        mov     x0, #SIG_SETMASK        // rt_sigprocmask(SIG_SETMASK, every signal, NULL, 8)
        ldr     x1, [x19, #Z_BLOCKED]
        mov     x2, #0
        mov     x3, #8
        mov     x8, #SYS_rt_sigprocmask
        svc     #0
        mov     x0, #SIGCHLD            // rt_sigaction(SIGCHLD, SIG_IGN, NULL, 8)
        ldr     x1, [x19, #Z_SIGACTION]
        mov     x2, #0
        mov     x3, #8
        mov     x8, #SYS_rt_sigaction
        svc     #0
        mov     x0, #PR_SET_PDEATHSIG   // prctl(PR_SET_PDEATHSIG, SIGKILL)
        mov     x1, #SIGKILL
        mov     x8, #SYS_prctl
        svc     #0
        mov     x8, #SYS_getppid        // the program may have ended before that
        svc     #0
        ldr     x1, [x19, #Z_PARENT]
        cmp     x0, x1
        b.ne    exit
        ldr     x0, [x19, #Z_SOCKET]    // dup3(socket, 3, O_CLOEXEC)
        mov     x1, #SCRIPT_FD
        mov     x2, #O_CLOEXEC
        mov     x8, #SYS_dup3
        svc     #0
        tbnz    x0, #63, exit
zygote_reset:   // close everything but fd 3
        mov     x0, #0                  // close_range(0, 2, 0)
        mov     x1, #2
        mov     x2, #0
        mov     x8, #SYS_close_range
        svc     #0
        mov     x0, #4                  // close_range(4, ~0U, 0)
        mov     x1, #0xffffffff
        mov     x2, #0
        mov     x8, #SYS_close_range
        svc     #0
zygote_wait:    // recvmsg(3, msg, 0): its descriptors are not close-on-exec
        ldr     x1, [x19, #Z_MSG]
        mov     x2, #ZYGOTE_CONTROL
        str     x2, [x1, #MSG_CONTROLLEN]
        mov     x0, #SCRIPT_FD
        mov     x2, #0
        mov     x8, #SYS_recvmsg
        svc     #0
        cmn     x0, #EINTR
        b.eq    zygote_wait
        cmp     x0, #0
        b.gt    1f
        mov     x0, #0                  // the supervisor is gone (or an error): exit(0)
        b       exit_x0
1:      ldr     w2, [x1, #MSG_FLAGS]
        tbnz    w2, #MSG_CTRUNC_BIT, zygote_reset
        ldr     x2, [x1, #MSG_CONTROLLEN]
        cmp     x2, #ZYGOTE_CONTROL
        b.ne    zygote_reset
        ldr     x3, [x1, #MSG_CONTROL]
        ldp     x4, x5, [x3]            // cmsg_len; cmsg_level, cmsg_type
        cmp     x4, #ZYGOTE_CONTROL
        b.ne    zygote_reset
        ldr     x6, scm_rights_header
        cmp     x5, x6
        b.ne    zygote_reset
        ldp     x4, x5, [x3, #16]       // the four fds
        ldr     x6, zygote_fds_low
        cmp     x4, x6
        b.ne    zygote_reset
        ldr     x6, zygote_fds_high
        cmp     x5, x6
        b.ne    zygote_reset
        mov     x0, #SIGCHLD            // clone(SIGCHLD, 0, 0, 0, 0)
        mov     x1, #0
        mov     x2, #0
        mov     x3, #0
        mov     x4, #0
        mov     x8, #SYS_clone
        svc     #0
        cbz     x0, 2f
        tbz     x0, #63, zygote_reset
        ldr     x1, [x19, #Z_FAILURE]   // write(4, {0, result}, 16)
        stp     xzr, x0, [x1]
        mov     x0, #4
        mov     x2, #16
        mov     x8, #SYS_write
        svc     #0
        b       zygote_reset
2:      mov     x0, #4                  // the child: dup3(4, 3, 0), then its own script
        mov     x1, #SCRIPT_FD
        mov     x2, #0
        mov     x8, #SYS_dup3
        svc     #0
        b       run_script

        .balign 8                       // the code is loaded at an 8-aligned address
script_magic:
        .quad   SCRIPT_MAGIC
scm_rights_header:                      // cmsg_level SOL_SOCKET, cmsg_type SCM_RIGHTS
        .quad   0x100000001
zygote_fds_low:                         // fds 0, 1
        .quad   0x100000000
zygote_fds_high:                        // fds 2, 4
        .quad   0x400000002
