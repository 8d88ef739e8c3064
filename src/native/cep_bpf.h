/* SPDX-License-Identifier: MIT */
/*
 * check_ephemeral_ports' BPF socket reader: a C ABI small enough for P/Invoke (DirectPInvoke
 * "cep_bpf", linked statically with libbpf, libelf, libz, libzstd).
 *
 *   char why[512];
 *   int err;
 *   struct cep_reader *r = cep_reader_open(0, NULL, &err, why, sizeof why); // NULL: err and why say why
 *   int fd = cep_reader_iter(r, CEP_ITER_TCP);   // an iterator of the CALLING THREAD's netns
 *   while ((n = cep_bpf_read(fd, buf, sizeof buf)) > 0)  // whole struct cep_record's (cep_record.h)
 *       ...;
 *   close(fd);                                   // one fd per walk; make a new one per namespace
 *   cep_reader_close(r);                         // frees what the reader owns (links, program, memory)
 *
 * A reader owns everything it opened; the library keeps no state between calls beyond the one
 * that libbpf's process-wide print hook forces (cep_bpf.c says how). Readers are independent: any
 * number may be open at once. An iterator fd outlives its reader (it holds its own reference to
 * the program), so a walk under way is not disturbed by cep_reader_close.
 * Nothing is ever printed: libbpf's messages are kept, the last one goes into `why`.
 * Records are only for sockets whose local port is in their namespace's ip_local_port_range.
 * The numbers (CEP_ITER_*, CEP_OPEN_*, CEP_MODE_*, the record's) are in cep_abi.h.
 */
#ifndef CEP_BPF_H
#define CEP_BPF_H

#include <stddef.h>
#include "cep_abi.h"
#include "cep_record.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The load cache's directory when cep_reader_open is given none (see cep_bpf.c). */
#define CEP_CACHE_DIR "/run/check_ephemeral_ports"

struct cep_reader;

/* Opens a reader: a pinned copy under /sys/fs/bpf/check_ephemeral_ports/<build id>/ when one
 * exists and is root's, else loads the embedded program (from the load cache in cache_dir, NULL for
 * CEP_CACHE_DIR, when a root run wrote it for this build and kernel; else through libbpf, CO-RE
 * against /sys/kernel/btf/vmlinux, and a root run writes the cache; CEP_OPEN_NO_CACHE: neither)
 * and pins it there for later runs when /sys/fs/bpf is a mounted bpffs. Unless CEP_OPEN_NO_PIN, a
 * run that may write there (root) leaves only this build's pins in it: what runs killed while
 * pinning left (tmp-<id>-<pid>) and other builds' pins go, under flock on the directory, so that
 * concurrent first runs do not disturb each other (cep_bpf.c).
 * Returns the reader, or NULL with *err (when err is not NULL) set to a positive errno and a
 * one-line reason in why (NUL-terminated, cut to whylen):
 *   EPERM   not root, or no CAP_BPF + CAP_PERFMON; lockdown; bpf() refused otherwise
 *   ENOENT  the kernel has no BTF (/sys/kernel/btf/vmlinux)
 *   EINVAL, EOPNOTSUPP, ENOTSUP(524)  the kernel cannot load socket iterators (too old)
 *   ENOMEM  no memory for the reader
 * On success *err is 0 and why holds a short note on how it was opened (pinned, loaded, from the
 * cache, why not pinned, whether cached). */
struct cep_reader *cep_reader_open(int flags, const char *cache_dir, int *err, char *why, size_t whylen);

/* A new iterator fd (O_CLOEXEC) over the TCP or UDP sockets (CEP_ITER_*) of the calling thread's
 * network namespace; -errno on failure (-EBADF for a NULL reader, -EINVAL for another which).
 * Read it with read() or cep_bpf_read() until 0; close it. Thread-safe for one reader. */
int cep_reader_iter(const struct cep_reader *r, int which);

/* How the reader reads: CEP_MODE_*; 0 for NULL. */
int cep_reader_mode(const struct cep_reader *r);

/* Frees everything the reader owns (its links and program, or nothing for pins: those stay for
 * later runs); NULL is a no-op. Iterator fds already made stay readable until closed. */
void cep_reader_close(struct cep_reader *r);

/* read() until buf is full or the iterator ends: bytes read (a multiple of the record size), 0 at
 * the end, -errno on failure. Retries EINTR/EAGAIN. */
long cep_bpf_read(int fd, void *buf, size_t len);

/* sizeof(struct cep_record) and CEP_RECORD_VERSION of the linked library, for a check at start-up
 * (the caller's constants come from cep_abi.h too, but an archive can be stale). */
int cep_bpf_record_size(void);
int cep_bpf_record_version(void);

/* The build id (hex of the BPF object's hash) that names the pin directory. */
const char *cep_bpf_build_id(void);

/* Removes every pinned copy (all build ids; not while a run pins, unless that takes over half a
 * second) and the load cache in cache_dir (NULL: CEP_CACHE_DIR): returns 0 or -errno. For
 * uninstalling. */
int cep_bpf_unpin_all(const char *cache_dir);

#ifdef __cplusplus
}
#endif
#endif
