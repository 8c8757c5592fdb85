/* Minimal Arm semihosting (no libc): print through the debugger or QEMU, and exit. */
#ifndef SEMIHOSTING_H_
#define SEMIHOSTING_H_

void sh_write0(const char *text);
void sh_exit(int status) __attribute__((noreturn));

#endif
