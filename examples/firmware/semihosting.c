/* Arm semihosting calls (BKPT 0xAB on M-profile): SYS_WRITE0 and SYS_EXIT. */
#include "semihosting.h"

#define SYS_WRITE0 0x04
#define SYS_EXIT 0x18
#define ADP_STOPPED_APPLICATION_EXIT 0x20026
#define ADP_STOPPED_RUN_TIME_ERROR 0x20023

static int semihost(int operation, const void *argument)
{
    register int r0 __asm__("r0") = operation;
    register const void *r1 __asm__("r1") = argument;
    __asm__ volatile("bkpt 0xab" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
}

void sh_write0(const char *text)
{
    semihost(SYS_WRITE0, text);
}

void sh_exit(int status)
{
    semihost(SYS_EXIT, (const void *)(status == 0 ? ADP_STOPPED_APPLICATION_EXIT
                                                  : ADP_STOPPED_RUN_TIME_ERROR));
    for (;;) {
    }
}
