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
        .equ SYS_exit_group,    94

        // Header fields: magic at 0, then
        .equ H_TOTAL_SIZE,      8                   // followed by count at 16
        .equ H_ERROR_FD,        24
        // Step fields: nr, a0..a5 at 0..48, then
        .equ S_FLAGS,           56                  // followed by store_address at 64
        .equ S_EXPECT,          72
        .equ FATAL_ON_ERROR_BIT,     0
        .equ FATAL_UNLESS_EQUAL_BIT, 1

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
1:      tbz     x9, #FATAL_ON_ERROR_BIT, 2f
        cmn     x0, #4095               // carry set iff x0 >= -4095 unsigned,
        b.hs    fail                    // i.e. -4095..-1, a -errno
2:      tbz     x9, #FATAL_UNLESS_EQUAL_BIT, 3f
        ldr     x11, [x23, #S_EXPECT]
        cmp     x0, x11
        b.ne    fail
3:      add     x23, x23, #STEP_SIZE
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

        .balign 8                       // the code is loaded at an 8-aligned address
script_magic:
        .quad   SCRIPT_MAGIC
