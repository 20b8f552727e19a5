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
# (see `reaper` below), which has registers of its own.

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
        .equ SYS_rt_sigprocmask, 14
        .equ SYS_getpid,        39
        .equ SYS_wait4,         61
        .equ SYS_kill,          62
        .equ SYS_exit_group,    231
        .equ SYS_ppoll,         271
        .equ SYS_prlimit64,     302
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

        # ReaperParams fields (the address is a FORK_REAPER step's `expect`)
        .equ P_POLLFDS,         0                   # -> 2 x struct pollfd: signalfd, pidfd
        .equ P_KILL_TARGET,     8                   # pid argument of kill(2)
        .equ P_SIGMAP,          16                  # -> u8[65]: signal received -> signal sent
        .equ P_SIGINFO,         24                  # -> 128 bytes: struct signalfd_siginfo
        .equ P_CLOSE_LAST,      32                  # close_range(0, this, 0) first, unless 0
        .equ P_ZERO,            40                  # 16 zero bytes: empty sigset, rlimit {0, 0}
        .equ P_STATUS,          56                  # wait4 status word
        .equ SSI_PID,           12                  # in struct signalfd_siginfo (signo at 0)

        .equ EINTR,             4
        .equ POLLIN,            1
        .equ WNOHANG_WALL,      0x40000001          # WNOHANG | __WALL
        .equ SIGKILL,           9
        .equ SIG_SETMASK,       2
        .equ RLIMIT_CORE,       4

_start:
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
2:      test    byte ptr [rbx + S_FLAGS], FATAL_ON_ERROR
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
# it when the pidfd of Node polls readable, and once no child is left exits
# like its first child did. Registers:
#   r12 = ReaperParams         r13 = first child's pid    r14 = its wait status
#   r15 = pollfds watched (2, then 1 once Node is gone)
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
        mov     r15d, 2

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

wait:   # ppoll(pollfds, r15, NULL, NULL, 0) with events = POLLIN, revents = 0
        mov     dword ptr [rbx + 4], POLLIN
        mov     dword ptr [rbx + 12], POLLIN
        mov     eax, SYS_ppoll
        mov     rdi, rbx
        mov     rsi, r15
        xor     edx, edx
        xor     r10d, r10d
        syscall
        test    rax, rax
        js      reap                    # EINTR
        cmp     word ptr [rbx + 14], 0  # pidfd revents: Node is gone
        je      3f
        mov     r15d, 1                 # stop watching it
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
