/*
 * Binds the few libc symbols whose newest version is above the glibc floor (2.17) to an older
 * version of the same function, so that the binary loads on every glibc from 2.17 on.
 *
 * How: the link passes -Wl,--wrap=NAME for every NAME below (src/build/GlibcFloor.targets), so every
 * reference to NAME in the runtime's objects becomes a reference to __wrap_NAME, defined here. Each
 * __wrap_NAME calls NAME through a local alias that .symver binds to the old version; the linker
 * then records NAME@OLD in the binary, never the default NAME@@NEW of the sysroot's libc.
 *
 * Adding a symbol: one COMPAT line below for each architecture, and its name in GlibcWrap in
 * src/build/GlibcFloor.targets. The old version must behave the same for the callers here: check
 * glibc's NEWS and the symbol's compat code before adding one.
 *   log@GLIBC_2.29, pow@GLIBC_2.29: the same log() and pow() without the SVID error handling
 *   (matherr), which a program linked after 2.27 never gets anyway; the old versions are the same
 *   code with a wrapper. (pow: referenced since the NAT kind's code came in; the runtime's Math.Pow
 *   maps to it.)
 * The versions are the ones each architecture's glibc started with (2.2.5 on x86_64, 2.17 on
 * aarch64): every glibc this binary supports has them.
 */
#include <stddef.h>
#include <stdio.h>

#if defined(__x86_64__)
#define OLD_LIBM "GLIBC_2.2.5"
#elif defined(__aarch64__)
#define OLD_LIBM "GLIBC_2.17"
#else
#error "glibc-compat.c: no symbol versions known for this architecture"
#endif

/* RET NAME(ARGS): __wrap_NAME calls compat_NAME, which is NAME@OLD. */
#define COMPAT(ret, name, version, params, args)                       \
    ret compat_##name params;                                          \
    __asm__(".symver compat_" #name "," #name "@" version);            \
    ret __wrap_##name params;                                          \
    ret __wrap_##name params { return compat_##name args; }

COMPAT(double, log, OLD_LIBM, (double x), (x))
COMPAT(double, pow, OLD_LIBM, (double x, double y), (x, y))

/* fmemopen@GLIBC_2.22: libbpf.a (the BPF reader) refers to it for kconfig from memory, which the
 * reader never asks for; the old version differs only in corner cases of buffer and write modes. */
#ifdef CEP_WRAP_fmemopen
COMPAT(FILE *, fmemopen, OLD_LIBM, (void *buf, size_t size, const char *mode), (buf, size, mode))
#endif
