# Sandlock exec stub, x86_64 (GNU as, Intel syntax).
#
# Reads a launch script from fd 3 into the RW segment at SCRIPT_BASE and runs
# its steps as raw syscalls. The layout is described in ../script.ts; the
# machine code assembled from this file is committed in ../code.ts
# (regenerate with `node tools/stub/assemble.mjs --write`).
#
# Registers kept across the whole run (the kernel preserves every register
# except rax, rcx and r11 across `syscall`, see arch/x86/entry/entry_64.S):
#   r12 = SCRIPT_BASE          rbp = bytes wanted so far (32, then total_size)
#   rbx = bytes read so far,   then the address of the current step
#   r14 = step count           r15 = index of the current step
# A FORK_REAPER step turns the parent of its fork into the sandbox's reaper
# (see `reaper` below), which has registers of its own; a FORK_ZYGOTE step
# turns the child of its fork into the sandbox's zygote (see `zygote`).

        .intel_syntax noprefix
        .text
        .globl _start

        .equ SCRIPT_BASE,       0x10000000
        .equ SCRIPT_CAPACITY,   0x800000            # 8 MiB, the RW segment's memsz
        .equ SCRIPT_MAGIC,      0x3130425554534c53  # "SLSTUB01" read as a u64 LE
        .equ HEADER_SIZE,       32
        .equ STEP_SIZE,         80
        .equ SCRIPT_FD,         3

        .equ SYS_read,          0
        .equ SYS_write,         1
        .equ SYS_close,         3
        .equ SYS_rt_sigaction,  13
        .equ SYS_rt_sigprocmask, 14
        .equ SYS_getpid,        39
        .equ SYS_sendmsg,       46
        .equ SYS_recvmsg,       47
        .equ SYS_clone,         56
        .equ SYS_wait4,         61
        .equ SYS_kill,          62
        .equ SYS_getppid,       110
        .equ SYS_prctl,         157
        .equ SYS_exit_group,    231
        .equ SYS_ppoll,         271
        .equ SYS_prlimit64,     302
        .equ SYS_dup3,          292
        .equ SYS_close_range,   436

        # Header fields
        .equ H_MAGIC,           0
        .equ H_TOTAL_SIZE,      8
        .equ H_COUNT,           16
        .equ H_ERROR_FD,        24
        # Step fields: nr, a0..a5 at 0..48, then these
        .equ S_FLAGS,           56
        .equ S_STORE,           64
        .equ S_EXPECT,          72
        .equ FATAL_ON_ERROR,    1
        .equ FATAL_UNLESS_EQUAL, 2
        .equ FORK_REAPER,       4
        .equ FORK_ZYGOTE,       8

        # ReaperParams fields (the address is a FORK_REAPER step's `expect`)
        .equ P_POLLFDS,         0                   # -> 3 x struct pollfd: signalfd, pidfd, broker
        .equ P_KILL_TARGET,     8                   # pid argument of kill(2)
        .equ P_SIGMAP,          16                  # -> u8[65]: signal received -> signal sent
        .equ P_SIGINFO,         24                  # -> 128 bytes: struct signalfd_siginfo
        .equ P_CLOSE_LAST,      32                  # close_range(0, this, 0) first, unless 0
        .equ P_ZERO,            40                  # 16 zero bytes: empty sigset, rlimit {0, 0}
        .equ P_STATUS,          56                  # wait4 status word
        .equ P_BROKER,          64                  # -> the request buffer of the broker block
        .equ SSI_PID,           12                  # in struct signalfd_siginfo (signo at 0)

        # ZygoteParams fields (the address is a FORK_ZYGOTE step's `expect`)
        .equ Z_SOCKET,          0                   # the zygote's end of its socket
        .equ Z_PARENT,          8                   # the program's pid
        .equ Z_MSG,             16                  # -> struct msghdr: iov -> 1 byte, control -> 32 bytes
        .equ Z_BLOCKED,         24                  # -> sigset: every signal
        .equ Z_SIGACTION,       32                  # -> struct sigaction: SIG_IGN
        .equ Z_FAILURE,         40                  # -> 16 bytes: a failure record
        .equ MSG_CONTROL,       32                  # in struct msghdr
        .equ ZYGOTE_CONTROL,    32                  # CMSG_LEN(4 * 4) = CMSG_SPACE(4 * 4)
        .equ SCM_RIGHTS_HEADER, 0x100000001         # cmsg_level SOL_SOCKET, cmsg_type SCM_RIGHTS
        .equ ZYGOTE_FDS_LOW,    0x100000000         # fds 0, 1
        .equ ZYGOTE_FDS_HIGH,   0x400000002         # fds 2, 4

        # Broker block (BROKER_BLOCK in ../script.ts); the code addresses it
        # from its request buffer, which comes last, at negative offsets
        .equ B_RECV_CONTROL,    0                   # struct cmsghdr, then up to 253 int fds
        .equ B_RECV_MSG,        1032                # struct msghdr: iov -> {request, 8 KiB}
        .equ B_SEND_MSG,        1088                # struct msghdr: iov -> {request, B_SEND_LEN}
        .equ B_SEND_LEN,        1168                # iov_len of the send iovec
        .equ B_SEND_FD,         1192                # the int of the send SCM_RIGHTS record
        .equ B_CALL,            1200                # nr, a0..a5 as the syscall gets them
        .equ B_REQUEST,         1256
        .equ MSG_CONTROLLEN,    40                  # in struct msghdr
        .equ MSG_FLAGS,         48
        .equ CMSG_DATA,         16                  # after struct cmsghdr
        .equ RECV_CONTROL_SIZE, 1032                # CMSG_SPACE(4 * 253)
        .equ SEND_CONTROL_SIZE, 24                  # CMSG_SPACE(4)
        .equ RECV_MSG,          B_RECV_MSG - B_REQUEST
        .equ SEND_MSG,          B_SEND_MSG - B_REQUEST
        .equ SEND_LEN,          B_SEND_LEN - B_REQUEST
        .equ RECV_FDS,          B_RECV_CONTROL + CMSG_DATA - B_REQUEST
        .equ SEND_FD,           B_SEND_FD - B_REQUEST
        .equ CALL,              B_CALL - B_REQUEST
        # Request fields (BROKER_REQUEST): nr (the result in the reply), args at 8
        .equ R_KINDS,           56                  # u8 each: 0 literal, 1 fd index, 2 offset
        .equ R_PATCHES,         62                  # u16: patches, {u32 at, u32 kind} each at R_DATA
        .equ R_FLAGS,           64
        .equ R_DATA,            72
        .equ RETURNS_FD,        1

        .equ EINTR,             4
        .equ EBADF,             9
        .equ EAGAIN,            11
        .equ EINVAL,            22
        .equ MSG_CTRUNC,        0x8
        .equ MSG_TRUNC,         0x20
        .equ MSG_DONTWAIT,      0x40
        .equ MSG_NOSIGNAL,      0x4000
        .equ MSG_CMSG_CLOEXEC,  0x40000000
        .equ POLLIN,            1
        .equ WNOHANG_WALL,      0x40000001          # WNOHANG | __WALL
        .equ SIGKILL,           9
        .equ SIGCHLD,           17
        .equ SIG_SETMASK,       2
        .equ PR_SET_PDEATHSIG,  1
        .equ O_CLOEXEC,         0x80000
        .equ RLIMIT_CORE,       4

_start:
run_script:     # also where a zygote's child starts over
        mov     r12d, SCRIPT_BASE       # writing r12d zero-extends into r12
        xor     ebx, ebx
        mov     ebp, HEADER_SIZE
        call    read_exact              # exactly the header, nothing past it

        # Validate the header; a bad one exits without a report.
        movabs  rax, SCRIPT_MAGIC
        cmp     [r12 + H_MAGIC], rax
        jne     exit
        mov     r14, [r12 + H_COUNT]
        cmp     r14, SCRIPT_CAPACITY    # bounds count first, so count * 80
        ja      exit                    # below cannot overflow
        mov     rbp, [r12 + H_TOTAL_SIZE]
        cmp     rbp, SCRIPT_CAPACITY    # total_size <= capacity
        ja      exit
        imul    rax, r14, STEP_SIZE
        add     rax, HEADER_SIZE
        cmp     rbp, rax                # total_size >= 32 + count * 80
        jb      exit
        call    read_exact              # the rest of the script

        lea     rbx, [r12 + HEADER_SIZE]
        xor     r15d, r15d
        jmp     next_step               # fail and exit sit here so every jump is short

fail:   # Report {u64 step_index, u64 raw_result} from SCRIPT_BASE over the header.
        mov     [r12], r15
        mov     [r12 + 8], rax
        mov     eax, SYS_write
        mov     rdi, [r12 + H_ERROR_FD]
        mov     rsi, r12
        mov     edx, 16
        syscall
exit:
        mov     edi, 127
exit_edi:
        mov     eax, SYS_exit_group
        syscall

next_step:
        cmp     r15, r14
        jae     exit                    # ran off the end: the execve did not happen
        mov     rax, [rbx]              # nr
        mov     rdi, [rbx + 8]
        mov     rsi, [rbx + 16]
        mov     rdx, [rbx + 24]
        mov     r10, [rbx + 32]         # the 4th argument goes in r10, not rcx
        mov     r8, [rbx + 40]
        mov     r9, [rbx + 48]
        syscall                         # clobbers rcx and r11
        mov     rcx, [rbx + S_STORE]
        test    rcx, rcx
        jz      1f
        mov     [rcx], rax              # store the full 64-bit result
1:      test    byte ptr [rbx + S_FLAGS], FORK_REAPER
        jz      2f
        test    rax, rax
        js      fail                    # the fork failed
        jnz     reaper                  # the parent; the child goes on
2:      test    byte ptr [rbx + S_FLAGS], FORK_ZYGOTE
        jz      5f
        test    rax, rax
        jz      zygote                  # the child; the parent goes on, also when the fork failed
5:      test    byte ptr [rbx + S_FLAGS], FATAL_ON_ERROR
        jz      3f
        cmp     rax, -4095              # -4095..-1 is -errno (unsigned compare)
        jae     fail
3:      test    byte ptr [rbx + S_FLAGS], FATAL_UNLESS_EQUAL
        jz      4f
        cmp     rax, [rbx + S_EXPECT]
        jne     fail
4:      add     rbx, STEP_SIZE
        inc     r15
        jmp     next_step

# Read from fd 3 into SCRIPT_BASE + rbx until rbx == rbp, asking each time
# for just the bytes still missing. EOF or an error before that: exit(127).
read_exact:
        cmp     rbx, rbp
        jae     read_done
        xor     eax, eax                # SYS_read
        mov     edi, SCRIPT_FD
        lea     rsi, [r12 + rbx]
        mov     rdx, rbp
        sub     rdx, rbx
        syscall
        test    rax, rax
        jle     exit
        add     rbx, rax
        jmp     read_exact
read_done:
        ret

# The parent of a FORK_REAPER step's fork, a child subreaper: reaps every
# process of the sandbox, forwards signals (read from a signalfd) to it, kills
# it when the pidfd of Node polls readable, serves the supervisor's requests
# on the broker socket, and once no child is left exits like its first child
# did. Registers:
#   r12 = ReaperParams         r13 = first child's pid    r14 = its wait status
#   rbx = pollfds              rbp = our own pid
reaper:
        mov     r12, [rbx + S_EXPECT]
        mov     r13, rax
        mov     rbx, [r12 + P_POLLFDS]
        mov     eax, SYS_getpid
        syscall
        mov     ebp, eax
        mov     rsi, [r12 + P_CLOSE_LAST]
        test    rsi, rsi
        jz      1f
        mov     eax, SYS_close_range    # close_range(0, close_last, 0)
        xor     edi, edi
        xor     edx, edx
        syscall
1:      mov     r14d, 127 << 8          # as if exit(127), should it never be reaped

reap:   # wait4(-1, &status, WNOHANG | __WALL, NULL) until nothing is left to reap
        mov     eax, SYS_wait4
        mov     rdi, -1
        lea     rsi, [r12 + P_STATUS]
        mov     edx, WNOHANG_WALL
        xor     r10d, r10d
        syscall
        test    rax, rax
        jz      wait                    # children left, none has ended
        js      2f
        cmp     rax, r13
        jne     reap
        mov     r14d, [r12 + P_STATUS]  # the first child's status
        jmp     reap
2:      cmp     rax, -EINTR
        je      reap

finish: # No child left (ECHILD): end as the first child did.
        mov     eax, r14d
        movzx   edi, ah                 # its exit code
        and     eax, 0x7f               # or the signal that killed it
        jz      exit_edi
        mov     r14d, eax
        mov     eax, SYS_prlimit64      # prlimit64(0, RLIMIT_CORE, {0, 0}, NULL): no core of ours
        xor     edi, edi
        mov     esi, RLIMIT_CORE
        lea     rdx, [r12 + P_ZERO]
        xor     r10d, r10d
        syscall
        mov     eax, SYS_rt_sigprocmask # rt_sigprocmask(SIG_SETMASK, {}, NULL, 8)
        mov     edi, SIG_SETMASK
        lea     rsi, [r12 + P_ZERO]
        xor     edx, edx
        mov     r10d, 8
        syscall
        mov     eax, SYS_kill           # kill(getpid(), signal)
        mov     edi, ebp
        mov     esi, r14d
        syscall
        lea     edi, [r14 + 128]        # still here (an ignored signal): exit(128 + signal)
        jmp     exit_edi

wait:   # ppoll(pollfds, 3, NULL, NULL, 0), with events = POLLIN, revents = 0 in the
        # two slots steps stored fds in; a negative fd is skipped (poll(2))
        mov     dword ptr [rbx + 4], POLLIN
        mov     dword ptr [rbx + 12], POLLIN
        mov     eax, SYS_ppoll
        mov     rdi, rbx
        mov     esi, 3
        xor     edx, edx
        xor     r10d, r10d
        syscall
        test    rax, rax
        js      reap                    # EINTR
        cmp     word ptr [rbx + 22], 0  # broker revents
        je      1f
        call    broker
1:      cmp     word ptr [rbx + 14], 0  # pidfd revents: Node is gone
        je      3f
        or      dword ptr [rbx + 8], -1 # stop watching it
        mov     esi, SIGKILL
        call    kill_sandbox
3:      cmp     word ptr [rbx + 6], 0   # signalfd revents
        je      reap

drain:  # read(signalfd, siginfo, 128) until it has nothing more (non-blocking)
        xor     eax, eax                # SYS_read
        mov     edi, [rbx]
        mov     rsi, [r12 + P_SIGINFO]
        mov     edx, 128
        syscall
        test    rax, rax
        jle     reap
        cmp     [rsi + SSI_PID], ebp    # sent by ourselves (kill_target includes us)
        je      drain
        mov     eax, [rsi]              # ssi_signo
        cmp     eax, 65
        jae     drain
        mov     rcx, [r12 + P_SIGMAP]
        movzx   esi, byte ptr [rcx + rax]
        test    esi, esi
        jz      drain                   # not forwarded
        call    kill_sandbox
        jmp     drain

kill_sandbox:   # kill(kill_target, esi)
        mov     eax, SYS_kill
        mov     rdi, [r12 + P_KILL_TARGET]
        syscall
        ret

# One request on the broker socket (BROKER_REQUEST in ../script.ts): receive
# it with its fds, run the syscall it names with fd indexes and data offsets
# replaced, send the message back with the result over its first u64 (and the
# result fd if asked), close the fds received and the one sent. r8 = the
# request buffer; the count of fds received is pushed across the syscalls.
broker:
        mov     r8, [r12 + P_BROKER]    # recvmsg(2) leaves msg_controllen at what it filled
        mov     qword ptr [r8 + RECV_MSG + MSG_CONTROLLEN], RECV_CONTROL_SIZE
        mov     eax, SYS_recvmsg        # recvmsg(broker, &recv_msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT)
        mov     edi, [rbx + 16]
        lea     rsi, [r8 + RECV_MSG]
        mov     edx, MSG_CMSG_CLOEXEC | MSG_DONTWAIT
        syscall
        test    rax, rax
        jg      2f
        cmp     rax, -EAGAIN
        je      1f
        cmp     rax, -EINTR
        je      1f
        or      dword ptr [rbx + 16], -1 # the supervisor is gone (0) or an error: stop serving
        test    rax, rax
        jz      2f                      # (an empty last message may still bring fds)
1:      ret
2:      mov     [r8 + SEND_LEN], rax    # the reply is as long as the request
        xor     ecx, ecx                # rcx = fds received: none without control data,
        cmp     [r8 + RECV_MSG + MSG_CONTROLLEN], rcx
        je      3f
        mov     rcx, [r8 + RECV_FDS - CMSG_DATA] # else cmsg_len = 16 + 4 * fds (SCM_RIGHTS,
        sub     ecx, CMSG_DATA                   # the only record a unix socket sends us)
        shr     ecx, 2
3:      push    rcx                     # fds that did not fit are closed by the kernel
        test    byte ptr [r8 + RECV_MSG + MSG_FLAGS], MSG_TRUNC | MSG_CTRUNC
        jnz     invalid                 # (scm_detach_fds in net/core/scm.c)
        cmp     rax, R_DATA
        jb      invalid
        movzx   edi, word ptr [r8 + R_PATCHES] # rdi = patches of the message, read as
        lea     rdx, [R_DATA + rdi * 8]          # arguments are (the table must fit)
        cmp     rdx, rax
        ja      invalid
patch:  dec     edi
        js      args
        mov     edx, [r8 + R_DATA + rdi * 8]     # rdx = where (8 bytes must fit)
        lea     rsi, [rdx + 8]
        cmp     rsi, rax
        ja      invalid
        add     rdx, r8
        mov     esi, [r8 + R_DATA + 4 + rdi * 8] # esi = kind
        dec     esi
        jz      1f
        dec     esi
        jnz     invalid
        mov     rsi, [rdx]              # 2: a u64 offset into the message
        cmp     rsi, rax
        jae     invalid
        add     rsi, r8
        mov     [rdx], rsi
        jmp     patch
1:      mov     esi, [rdx]              # 1: a u32 index into the fds received
        cmp     rsi, rcx
        jae     bad_fd
        mov     esi, [r8 + RECV_FDS + rsi * 4]
        mov     [rdx], esi
        jmp     patch
args:   mov     rdx, [r8]
        mov     [r8 + CALL], rdx        # nr
        xor     edi, edi                # rdi = argument index
arg:    mov     rdx, [r8 + 8 + rdi * 8]
        movzx   esi, byte ptr [r8 + R_KINDS + rdi]
        dec     esi
        js      5f                      # 0: literal
        jz      4f
        dec     esi
        jnz     invalid
        cmp     rdx, rax                # 2: an offset into the message
        jae     invalid
        add     rdx, r8
        jmp     5f
4:      cmp     rdx, rcx                # 1: an index into the fds received
        jae     bad_fd
        mov     edx, [r8 + RECV_FDS + rdx * 4]
5:      mov     [r8 + CALL + 8 + rdi * 8], rdx
        inc     edi
        cmp     edi, 6
        jb      arg
        mov     rax, [r8 + CALL]
        mov     rdi, [r8 + CALL + 8]
        mov     rsi, [r8 + CALL + 16]
        mov     rdx, [r8 + CALL + 24]
        mov     r10, [r8 + CALL + 32]
        mov     r9, [r8 + CALL + 48]
        mov     r8, [r8 + CALL + 40]
        syscall
        jmp     reply
bad_fd: push    -EBADF
        jmp     6f
invalid:
        push    -EINVAL
6:      pop     rax
reply:  mov     r8, [r12 + P_BROKER]
        mov     [r8], rax               # the result over nr
        mov     [r8 + SEND_FD], eax
        xor     r9d, r9d                # r9 = control data: none, or the result fd if asked
        test    rax, rax
        js      7f
        test    byte ptr [r8 + R_FLAGS], RETURNS_FD
        jz      7f
        mov     r9b, SEND_CONTROL_SIZE
7:      mov     [r8 + SEND_MSG + MSG_CONTROLLEN], r9
        mov     eax, SYS_sendmsg        # sendmsg(broker, &send_msg, MSG_NOSIGNAL | MSG_DONTWAIT):
                                        # lost if the supervisor queued more than it reads
        mov     edi, [rbx + 16]
        lea     rsi, [r8 + SEND_MSG]
        mov     edx, MSG_NOSIGNAL | MSG_DONTWAIT
        syscall
        pop     rsi                     # fds received
        test    r9, r9
        jz      8f
        mov     eax, SYS_close
        mov     edi, [r8 + SEND_FD]
        syscall
8:      dec     esi
        js      9f
        mov     eax, SYS_close
        mov     edi, [r8 + RECV_FDS + rsi * 4]
        syscall
        jmp     8b
9:      ret

# The child of a FORK_ZYGOTE step (forked after the program's whole
# confinement, so in its Landlock domains and under its seccomp filters):
# forks a process for each request on its socket, which then runs a launch
# script of its own, as the stub does from _start. It holds only its socket
# (as fd 3), blocks every signal, dies with the program (PR_SET_PDEATHSIG)
# and leaves its children to the kernel to reap (SIGCHLD ignored, sigaction(2)).
# A request is one byte with exactly four descriptors, which land at 0, 1, 2
# and 4: the child's stdin, stdout, stderr and the socket it reads its script
# from (then as fd 3) and reports on. A fork that fails is reported there as a
# failure of step 0. r12 = ZygoteParams.
zygote:
        mov     r12, [rbx + S_EXPECT]
        mov     eax, SYS_rt_sigprocmask # rt_sigprocmask(SIG_SETMASK, every signal, NULL, 8)
        mov     edi, SIG_SETMASK
        mov     rsi, [r12 + Z_BLOCKED]
        xor     edx, edx
        mov     r10d, 8
        syscall
        mov     eax, SYS_rt_sigaction   # rt_sigaction(SIGCHLD, SIG_IGN, NULL, 8)
        mov     edi, SIGCHLD
        mov     rsi, [r12 + Z_SIGACTION]
        xor     edx, edx
        mov     r10d, 8
        syscall
        mov     eax, SYS_prctl          # prctl(PR_SET_PDEATHSIG, SIGKILL)
        mov     edi, PR_SET_PDEATHSIG
        mov     esi, SIGKILL
        syscall
        mov     eax, SYS_getppid        # the program may have ended before that
        syscall
        cmp     rax, [r12 + Z_PARENT]
        jne     exit
        mov     eax, SYS_dup3           # dup3(socket, 3, O_CLOEXEC)
        mov     rdi, [r12 + Z_SOCKET]
        mov     esi, SCRIPT_FD
        mov     edx, O_CLOEXEC
        syscall
        test    rax, rax
        js      exit
zygote_reset:   # close everything but fd 3
        mov     eax, SYS_close_range    # close_range(0, 2, 0)
        xor     edi, edi
        mov     esi, 2
        xor     edx, edx
        syscall
        mov     eax, SYS_close_range    # close_range(4, ~0U, 0)
        mov     edi, 4
        mov     esi, -1
        xor     edx, edx
        syscall
zygote_wait:    # recvmsg(3, msg, 0): its descriptors are not close-on-exec
        mov     rsi, [r12 + Z_MSG]
        mov     qword ptr [rsi + MSG_CONTROLLEN], ZYGOTE_CONTROL
        mov     eax, SYS_recvmsg
        mov     edi, SCRIPT_FD
        xor     edx, edx
        syscall
        cmp     rax, -EINTR
        je      zygote_wait
        test    rax, rax
        jg      1f
        xor     edi, edi                # the supervisor is gone (or an error): exit(0)
        jmp     exit_edi
1:      test    byte ptr [rsi + MSG_FLAGS], MSG_CTRUNC
        jnz     zygote_reset
        cmp     qword ptr [rsi + MSG_CONTROLLEN], ZYGOTE_CONTROL
        jne     zygote_reset
        mov     rcx, [rsi + MSG_CONTROL]
        cmp     qword ptr [rcx], ZYGOTE_CONTROL
        jne     zygote_reset
        movabs  rax, SCM_RIGHTS_HEADER
        cmp     [rcx + 8], rax
        jne     zygote_reset
        movabs  rax, ZYGOTE_FDS_LOW
        cmp     [rcx + 16], rax
        jne     zygote_reset
        movabs  rax, ZYGOTE_FDS_HIGH
        cmp     [rcx + 24], rax
        jne     zygote_reset
        mov     eax, SYS_clone          # clone(SIGCHLD, 0, 0, 0, 0)
        mov     edi, SIGCHLD
        xor     esi, esi
        xor     edx, edx
        xor     r10d, r10d
        xor     r8d, r8d
        syscall
        test    rax, rax
        jz      2f
        jns     zygote_reset
        mov     rsi, [r12 + Z_FAILURE]  # write(4, {0, result}, 16)
        mov     qword ptr [rsi], 0
        mov     [rsi + 8], rax
        mov     eax, SYS_write
        mov     edi, 4
        mov     edx, 16
        syscall
        jmp     zygote_reset
2:      mov     eax, SYS_dup3           # the child: dup3(4, 3, 0), then its own script
        mov     edi, 4
        mov     esi, SCRIPT_FD
        xor     edx, edx
        syscall
        jmp     run_script
