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
// (see `reaper` below), which reuses x19..x24 for registers of its own.

        .text
        .globl _start

        .equ SCRIPT_BASE,       0x10000000
        .equ SCRIPT_CAPACITY,   0x800000            // 8 MiB, the RW segment's memsz
        .equ SCRIPT_MAGIC,      0x3130425554534c53  // "SLSTUB01" read as a u64 LE
        .equ HEADER_SIZE,       32
        .equ STEP_SIZE,         80
        .equ SCRIPT_FD,         3

        .equ SYS_read,          63
        .equ SYS_write,         64
        .equ SYS_ppoll,         73
        .equ SYS_exit_group,    94
        .equ SYS_kill,          129
        .equ SYS_rt_sigprocmask, 135
        .equ SYS_getpid,        172
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

        // ReaperParams fields (the address is a FORK_REAPER step's `expect`)
        .equ P_POLLFDS,         0                   // -> 2 x struct pollfd: signalfd, pidfd
        .equ P_KILL_TARGET,     8                   // pid argument of kill(2)
        .equ P_SIGMAP,          16                  // -> u8[65]: signal received -> signal sent
        .equ P_SIGINFO,         24                  // -> 128 bytes: struct signalfd_siginfo
        .equ P_CLOSE_LAST,      32                  // close_range(0, this, 0) first, unless 0
        .equ P_ZERO,            40                  // 16 zero bytes: empty sigset, rlimit {0, 0}
        .equ P_STATUS,          56                  // wait4 status word
        .equ SSI_PID,           12                  // in struct signalfd_siginfo (signo at 0)

        .equ EINTR,             4
        .equ POLLIN,            1
        .equ WNOHANG,           1
        .equ __WALL,            0x40000000
        .equ SIGKILL,           9
        .equ SIG_SETMASK,       2
        .equ RLIMIT_CORE,       4

_start:
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
2:      tbz     x9, #FATAL_ON_ERROR_BIT, 3f
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
// it when the pidfd of Node polls readable, and once no child is left exits
// like its first child did. Registers:
//   x19 = ReaperParams         x20 = first child's pid    x21 = its wait status
//   x22 = pollfds watched (2, then 1 once Node is gone)
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
        mov     x22, #2

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

wait:   // ppoll(pollfds, x22, NULL, NULL, 0) with events = POLLIN, revents = 0
        mov     w0, #POLLIN
        str     w0, [x23, #4]
        str     w0, [x23, #12]
        mov     x0, x23
        mov     x1, x22
        mov     x2, #0
        mov     x3, #0
        mov     x4, #0
        mov     x8, #SYS_ppoll
        svc     #0
        tbnz    x0, #63, reap           // EINTR
        ldrh    w0, [x23, #14]          // pidfd revents: Node is gone
        cbz     w0, 3f
        mov     x22, #1                 // stop watching it
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

        .balign 8                       // the code is loaded at an 8-aligned address
script_magic:
        .quad   SCRIPT_MAGIC
