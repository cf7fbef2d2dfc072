/* bornrt_cortexm.c: startup for bare-metal Cortex-M (ARMv7-M and ARMv8-M), used with the link.ld bornc writes.
 *
 * The vector table (initial stack pointer, reset and fault handlers, SysTick) goes to section .vectors, which the
 * linker script places where the core boots from. Reset_Handler copies .data from flash, clears .bss, enables
 * the FPU (CPACR, ARMv7-M Architecture Reference Manual B3.2.20), sets the stack limit register on ARMv8-M (a
 * stack overflow then faults instead of corrupting memory), calls main() and, if it returns, waits for
 * interrupts forever. Every handler is weak: an application (or the semihosting runner) defines its own.
 * No heap, no libc calls. In a vendor project (STM32Cube, Zephyr, CMSIS) use the vendor's startup instead. */
#include <stdint.h>

/* symbols of link.ld (declared as functions or arrays: only their addresses are used) */
extern void __stack_top(void);
extern uint32_t __data_load[], __data_start[], __data_end[], __bss_start[], __bss_end[], __stack_limit[];

int main(void);

void Reset_Handler(void);
void bornc_default_handler(void);
void NMI_Handler(void) __attribute__((weak, alias("bornc_default_handler")));
void HardFault_Handler(void) __attribute__((weak, alias("bornc_default_handler")));
void MemManage_Handler(void) __attribute__((weak, alias("bornc_default_handler")));
void BusFault_Handler(void) __attribute__((weak, alias("bornc_default_handler")));
void UsageFault_Handler(void) __attribute__((weak, alias("bornc_default_handler")));
void SVC_Handler(void) __attribute__((weak, alias("bornc_default_handler")));
void PendSV_Handler(void) __attribute__((weak, alias("bornc_default_handler")));
void SysTick_Handler(void) __attribute__((weak, alias("bornc_default_handler")));

/* newlib calls these around main when a runner links it; nothing to do on bare metal */
void _init(void);
void _fini(void);
void _init(void) {}
void _fini(void) {}

__attribute__((section(".vectors"), used)) void (*const bornc_vectors[16])(void) = {
    __stack_top, Reset_Handler, NMI_Handler, HardFault_Handler, MemManage_Handler, BusFault_Handler,
    UsageFault_Handler, 0, 0, 0, 0, SVC_Handler, 0, 0, PendSV_Handler, SysTick_Handler,
};

void bornc_default_handler(void) {
    for (;;) {
    }
}

void Reset_Handler(void) {
    const uint32_t *src = __data_load;
    uint32_t *dst;
#if defined(__ARM_FP)                      /* first: the compiler may vectorize the loops below (Helium) */
    *(volatile uint32_t *)0xE000ED88u |= 0xFu << 20;        /* CPACR: full access to CP10 and CP11 */
    __asm volatile("dsb\n\tisb" ::: "memory");
#endif
    for (dst = __data_start; dst < __data_end;) *dst++ = *src++;
    for (dst = __bss_start; dst < __bss_end;) *dst++ = 0;
#if defined(__ARM_ARCH_8M_MAIN__) || defined(__ARM_ARCH_8_1M_MAIN__)
    __asm volatile("msr msplim, %0" ::"r"(__stack_limit));
#endif
    (void)main();
    for (;;) __asm volatile("wfi");
}
