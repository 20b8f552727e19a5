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
        .equ SYS_exit_group,    231

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
        mov     eax, SYS_exit_group
        mov     edi, 127
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
1:      test    byte ptr [rbx + S_FLAGS], FATAL_ON_ERROR
        jz      2f
        cmp     rax, -4095              # -4095..-1 is -errno (unsigned compare)
        jae     fail
2:      test    byte ptr [rbx + S_FLAGS], FATAL_UNLESS_EQUAL
        jz      3f
        cmp     rax, [rbx + S_EXPECT]
        jne     fail
3:      add     rbx, STEP_SIZE
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
