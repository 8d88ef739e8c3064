/* SPDX-License-Identifier: MIT */
/*
 * The one AArch64 "outline atomics" helper that Debian 12's libbpf.a (built by GCC 12 with
 * -moutline-atomics) calls and that the Debian 11 sysroot's libgcc.a (GCC 10) lacks: the "_sync"
 * variants, for the legacy __sync_* builtins, came with GCC 12. libbpf uses it for
 * __sync_fetch_and_add() on its counters (probe_kern_syscall_wrapper, kprobe names).
 *
 * Same contract as libgcc's (lse.S, memory model SYNC): atomically add VAL to *PTR, return the old
 * value, with a full barrier. A sequentially consistent read-modify-write followed by a full fence
 * is at least that strong. Compiled with -mno-outline-atomics (build.sh) so that it never calls
 * another helper; linked into libcep_bpf.a for AArch64 targets only.
 */
#if defined(__aarch64__)
unsigned int __aarch64_ldadd4_sync(unsigned int val, unsigned int *ptr);

unsigned int __aarch64_ldadd4_sync(unsigned int val, unsigned int *ptr)
{
	unsigned int old = __atomic_fetch_add(ptr, val, __ATOMIC_SEQ_CST);
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	return old;
}
#endif
