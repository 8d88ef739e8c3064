/* SPDX-License-Identifier: MIT */
/*
 * check_ephemeral_ports' BPF socket reader: a C ABI small enough for P/Invoke (DirectPInvoke
 * "cep_bpf", linked statically with libbpf, libelf, libz, libzstd).
 *
 *   char why[512];
 *   int h = cep_bpf_open(0, why, sizeof why);      // > 0, or -errno with a reason in why
 *   int fd = cep_bpf_iter(h, CEP_BPF_TCP);         // an iterator of the CALLING THREAD's netns
 *   while ((n = read(fd, buf, sizeof buf)) > 0)    // whole struct cep_record's (cep_record.h)
 *       ...;
 *   close(fd);                                     // one fd per walk; make a new one per namespace
 *   cep_bpf_close(h);
 *
 * Nothing is ever printed: libbpf's messages are kept, the last one goes into `why`.
 * Records are only for sockets whose local port is in their namespace's ip_local_port_range.
 */
#ifndef CEP_BPF_H
#define CEP_BPF_H

#include <stddef.h>
#include "cep_record.h"

#ifdef __cplusplus
extern "C" {
#endif

/* cep_bpf_iter: which */
#define CEP_BPF_TCP 0
#define CEP_BPF_UDP 1

/* cep_bpf_open: flags */
#define CEP_BPF_NO_PIN    0x1 /* neither use nor create pinned iterators: load for this run only */
#define CEP_BPF_NO_REUSE  0x2 /* load (and pin, unless NO_PIN) even when a pinned copy exists */

/* cep_bpf_mode: how the handle reads */
#define CEP_BPF_MODE_PINNED  1 /* opened the iterators pinned by an earlier run (no bpf() call) */
#define CEP_BPF_MODE_LOADED_PINNED 2 /* loaded the program and pinned it for later runs */
#define CEP_BPF_MODE_LOADED  3 /* loaded the program for this run only (bpffs absent or pin refused) */
#define CEP_BPF_MODE_CACHED  4 /* as 3, but from the load cache written by an earlier root run: no BTF parsed */

/* Opens the reader: a pinned copy under /sys/fs/bpf/check_ephemeral_ports/<build id>/ when one
 * exists and is root's, else loads the embedded program (from the load cache in
 * /run/check_ephemeral_ports/ when a root run wrote it for this build and kernel; else through
 * libbpf, CO-RE against /sys/kernel/btf/vmlinux, and a root run writes the cache) and pins it there for later runs when /sys/fs/bpf is a mounted bpffs. Unless CEP_BPF_NO_PIN, a
 * run that may write there (root) leaves only this build's pins in it: what runs killed while
 * pinning left (tmp-<id>-<pid>) and other builds' pins go, under flock on the directory, so that
 * concurrent first runs do not disturb each other (cep_bpf.c). Returns a handle (> 0)
 * or -errno with a one-line reason in why (NUL-terminated, cut to whylen):
 *   -EPERM   not root, or no CAP_BPF + CAP_PERFMON; lockdown; bpf() refused otherwise
 *   -ENOENT  the kernel has no BTF (/sys/kernel/btf/vmlinux)
 *   -EINVAL, -EOPNOTSUPP, -ENOTSUP(524)  the kernel cannot load socket iterators (too old)
 * On success why holds a short note on how it was opened (pinned, loaded, from the cache, why not
 * pinned, whether cached). */
int cep_bpf_open(int flags, char *why, size_t whylen);

/* A new iterator fd (O_CLOEXEC) over the TCP or UDP sockets of the calling thread's network
 * namespace; -errno on failure. Read it with read() until 0; close it. Thread-safe. */
int cep_bpf_iter(int handle, int which);

/* read() until buf is full or the iterator ends: bytes read (a multiple of the record size), 0 at
 * the end, -errno on failure. Retries EINTR/EAGAIN. */
long cep_bpf_read(int fd, void *buf, size_t len);

int cep_bpf_mode(int handle);

/* sizeof(struct cep_record) and CEP_RECORD_VERSION, for a check at start-up */
int cep_bpf_record_size(void);
int cep_bpf_record_version(void);

/* The build id (hex of the BPF object's hash) that names the pin directory. */
const char *cep_bpf_build_id(void);

/* Removes every pinned copy (all build ids; not while a run pins, unless that takes over half a
 * second) and the load cache: returns 0 or -errno. For uninstalling. */
int cep_bpf_unpin_all(void);

void cep_bpf_close(int handle);

/* Internal (the test driver's --no-cache; not for P/Invoke): the load cache's directory, NULL for
 * none. Default /run/check_ephemeral_ports (see cep_bpf.c). Call before cep_bpf_open. */
void cep_bpf_set_cache_dir(const char *dir);

#ifdef __cplusplus
}
#endif
#endif
