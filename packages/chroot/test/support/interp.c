/* Says whether it runs as a program or as another program's interpreter
 * (PT_INTERP): its auxiliary vector's AT_ENTRY is its own entry point or
 * the program's. No libc: a static libc would set itself up from the
 * program's headers (AT_PHDR) when it is the interpreter. */
#include <elf.h>
#include <sys/syscall.h>

void _start(void);

static long call3(long n, long a, long b, long c) {
#if defined(__x86_64__)
  long r;
  __asm__ volatile("syscall" : "=a"(r) : "a"(n), "D"(a), "S"(b), "d"(c) : "rcx", "r11", "memory");
  return r;
#elif defined(__aarch64__)
  register long x8 __asm__("x8") = n;
  register long x0 __asm__("x0") = a;
  register long x1 __asm__("x1") = b;
  register long x2 __asm__("x2") = c;
  __asm__ volatile("svc #0" : "+r"(x0) : "r"(x8), "r"(x1), "r"(x2) : "memory");
  return x0;
#else
#error "x86_64 or aarch64"
#endif
}

__attribute__((used)) void interp_main(long *sp) {
  long argc = sp[0];
  char **envp = (char **)(sp + 1 + argc + 1);
  while (*envp) envp++;
  unsigned long entry = 0;
  for (unsigned long *aux = (unsigned long *)(envp + 1); aux[0] != AT_NULL; aux += 2)
    if (aux[0] == AT_ENTRY) entry = aux[1];
  static const char program[] = "as a program\n";
  static const char interpreter[] = "as an interpreter\n";
  if (entry == (unsigned long)&_start) call3(SYS_write, 1, (long)program, sizeof program - 1);
  else call3(SYS_write, 1, (long)interpreter, sizeof interpreter - 1);
  call3(SYS_exit_group, 0, 0, 0);
}

#if defined(__x86_64__)
__asm__(".globl _start\n_start:\n mov %rsp, %rdi\n and $-16, %rsp\n call interp_main\n hlt\n");
#else
__asm__(".globl _start\n_start:\n mov x0, sp\n bl interp_main\n");
#endif
