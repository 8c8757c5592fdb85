/* Cortex-M startup: vector table, .data/.bss initialisation, then main(); no libc. */
#include <stddef.h>
#include <stdint.h>

#include "semihosting.h"

extern uint32_t _sidata, _sdata, _edata, _sbss, _ebss, _estack;
int main(void);

void reset_handler(void)
{
    volatile uint32_t *src = &_sidata, *dst = &_sdata;  /* volatile: no memcpy/memset calls */
    while (dst < &_edata) {
        *dst++ = *src++;
    }
    for (dst = &_sbss; dst < &_ebss;) {
        *dst++ = 0;
    }
    sh_exit(main());
}

/* GCC may call these four for block stores and copies even in freestanding code (it requires
 * them of every freestanding environment: e.g. 256-bit model words on a 32-bit core). Byte loops
 * through volatile pointers, so that they are not turned back into calls to themselves. */
void *memset(void *dst, int value, size_t n)
{
    volatile unsigned char *d = dst;
    while (n--) {
        *d++ = (unsigned char)value;
    }
    return dst;
}

void *memmove(void *dst, const void *src, size_t n)
{
    volatile unsigned char *d = dst;
    const volatile unsigned char *s = src;
    if (d < s) {
        while (n--) {
            *d++ = *s++;
        }
    } else {
        while (n--) {
            d[n] = s[n];
        }
    }
    return dst;
}

void *memcpy(void *dst, const void *src, size_t n)
{
    return memmove(dst, src, n);
}

int memcmp(const void *x, const void *y, size_t n)
{
    const volatile unsigned char *a = x, *b = y;
    for (; n; --n, ++a, ++b) {
        if (*a != *b) {
            return *a < *b ? -1 : 1;
        }
    }
    return 0;
}

static void fault_handler(void)
{
    sh_write0("fault\n");
    sh_exit(1);
}

typedef void (*handler_t)(void);

__attribute__((section(".vectors"), used)) static const handler_t vectors[16] = {
    (handler_t)(uintptr_t)&_estack,  /* initial stack pointer */
    reset_handler,
    fault_handler, /* NMI */
    fault_handler, /* HardFault */
    fault_handler, /* MemManage */
    fault_handler, /* BusFault */
    fault_handler, /* UsageFault */
};
