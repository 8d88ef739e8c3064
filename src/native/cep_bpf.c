// SPDX-License-Identifier: MIT
/*
 * Loader for ports.bpf.c (see cep_bpf.h for the ABI, README.md for the design).
 *
 * The expensive part of BPF is loading: libbpf parses the kernel's whole BTF for the CO-RE
 * relocations and the attach targets (30-40 ms and ~11 MB here). Without bpffs a root run that
 * loaded through libbpf caches what that parse gave (the load cache below: relocated instructions
 * and attach BTF ids, in /run/check_ephemeral_ports), and later runs load from it in ~1.5 ms.
 * With bpffs, the first root run pins the two iterator links
 * under /sys/fs/bpf/check_ephemeral_ports/<build id>/ and every later run only open()s them: an
 * open of a pinned iterator link starts a new, private walk of the opening thread's namespace,
 * with no bpf() call and no shared state, so concurrent runs cannot disturb each other. The build
 * id is the hash of the BPF object, so a new plugin never reads an old program. Pins vanish at
 * reboot with bpffs, so the kernel cannot change under them.
 *
 * The pin directory holds only this build's pins after any run that may write there: whoever
 * pins holds flock(LOCK_EX) on /sys/fs/bpf/check_ephemeral_ports from before it makes its
 * tmp-<id>-<pid> directory until that is renamed or removed, so a tmp-* directory seen under
 * the lock belongs to a run that died (SIGKILL, OOM) and goes, whatever became of its pid.
 * Under the same lock go other builds' pins. A run that opens the pins reads the directory
 * once and, only when something else is there, takes the lock without waiting and sweeps.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/types.h>
#include <sys/utsname.h>
#include <stdint.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "cep_bpf.h"
#include "ports.skel.h"

#ifndef CEP_BPF_BUILD_ID
#error "build.sh defines CEP_BPF_BUILD_ID (the hash of ports.bpf.o)"
#endif

#define BPFFS "/sys/fs/bpf"
#define PIN_ROOT BPFFS "/check_ephemeral_ports"
#define PIN_DIR PIN_ROOT "/" CEP_BPF_BUILD_ID
#define BPF_FS_MAGIC_ 0xcafe4a11
#define ENOTSUPP_ 524

/* (the record's layout is asserted where it is declared, cep_record.h) */

static const char *const names[2] = { "tcp", "udp" };

/* One reader: everything an open made, freed by cep_reader_close (and on every failed path). */
struct cep_reader {
	int mode;                  /* CEP_MODE_* once open */
	struct cep_ports *skel;    /* loaded by libbpf */
	struct bpf_link *links[2]; /* loaded by libbpf */
	int link_fds[2];           /* the iterator links: the libbpf links' fds, or ours (from the cache) */
	int own_fds;               /* link_fds are ours to close (loaded from the cache) */
	int use_cache;             /* cache_dir names the load cache (not CEP_OPEN_NO_CACHE) */
	char cache_dir[256];
	char kkey[448];            /* kernel_key(), read once per open */
	/* libbpf's messages while this reader loads: never printed. The first warning of a failed
	 * step is kept for `why` (the later ones only say that the object and the skeleton failed
	 * too); of a verifier log, the line that names the refused instruction. */
	char first_msg[256];
	char verifier_msg[256];
};

/* libbpf_set_print() takes a function and no context pointer, and is process-wide: its messages
 * reach the reader whose open is running on this thread through this pointer, set only for the
 * length of that open. Thread-local so that readers opened at once on several threads each get
 * their own messages (a message libbpf prints on another thread, outside any open, is dropped). */
static __thread struct cep_reader *opening;

static void trim(char *m)
{
	size_t n = strlen(m);
	while (n > 0 && (m[n - 1] == '\n' || m[n - 1] == ' '))
		m[--n] = 0;
}

static void keep_verifier_line(struct cep_reader *r, const char *log)
{
	/* the refusal is the last line before "verification time" / "processed N insns" */
	const char *end = strstr(log, "\nverification time");
	if (!end)
		end = strstr(log, "\nprocessed ");
	if (!end)
		return;
	const char *start = end;
	while (start > log && start[-1] != '\n')
		start--;
	if (start == end && start > log) { /* an empty line: take the one before */
		end = start - 1;
		start = end;
		while (start > log && start[-1] != '\n')
			start--;
	}
	snprintf(r->verifier_msg, sizeof r->verifier_msg, "verifier: %.*s", (int)(end - start), start);
}

static int keep_message(enum libbpf_print_level level, const char *fmt, va_list args)
{
	struct cep_reader *r = opening;
	if (level != LIBBPF_WARN || !r)
		return 0;
	/* a verifier log can be long, and its refusal is at the end */
	char small[1024], *msg = small;
	va_list again;
	va_copy(again, args);
	int n = vsnprintf(small, sizeof small, fmt, args);
	if (n >= (int)sizeof small && (msg = malloc((size_t)n + 1)) != NULL)
		vsnprintf(msg, (size_t)n + 1, fmt, again);
	else
		msg = small;
	va_end(again);
	if (strstr(msg, "BEGIN PROG LOAD LOG"))
		keep_verifier_line(r, msg);
	else if (!r->first_msg[0] && !strstr(msg, "RLIMIT_MEMLOCK")) {
		/* (libbpf's memlock probe fails first whenever bpf() is refused: not the news) */
		const char *m = strncmp(msg, "libbpf: ", 8) ? msg : msg + 8;
		snprintf(r->first_msg, sizeof r->first_msg, "%s", m);
		trim(r->first_msg);
	}
	if (msg != small)
		free(msg);
	return 0;
}

static void say(char *why, size_t whylen, const char *fmt, ...)
{
	if (!why || whylen == 0)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, whylen, fmt, ap);
	va_end(ap);
}

/* Effective capability bits from /proc/self/status (no libcap). */
static unsigned long long cap_eff(void)
{
	FILE *f = fopen("/proc/self/status", "re");
	char line[256];
	unsigned long long caps = 0;
	if (!f)
		return 0;
	while (fgets(line, sizeof line, f))
		if (sscanf(line, "CapEff: %llx", &caps) == 1)
			break;
	fclose(f);
	return caps;
}

/* The active lockdown mode ("integrity", "confidentiality") or NULL. */
static const char *lockdown(char *buf, size_t len)
{
	int fd = open("/sys/kernel/security/lockdown", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	ssize_t n = read(fd, buf, len - 1);
	close(fd);
	if (n <= 0)
		return NULL;
	buf[n] = 0;
	char *a = strchr(buf, '['), *b = a ? strchr(a, ']') : NULL;
	if (!a || !b)
		return NULL;
	*b = 0;
	return strcmp(a + 1, "none") ? a + 1 : NULL;
}

/* A reason for a refused load, from the errno and what the process and the kernel say. */
static int refused(const struct cep_reader *r, int err, char *why, size_t whylen)
{
	char lock[128];
	char detail[512];
	snprintf(detail, sizeof detail, "%s%s%s", r->first_msg[0] ? r->first_msg : "no detail from libbpf",
		 r->verifier_msg[0] ? "; " : "", r->verifier_msg);
	if (err == EACCES && geteuid() == 0) {
		/* what the verifier answers when it refuses a program */
		say(why, whylen, "the kernel's verifier refused the socket iterators: %s", detail);
		return -err;
	}
	if (err == EPERM || err == EACCES) {
		unsigned long long caps = cap_eff();
		int bpf = (caps >> 39) & 1, perfmon = (caps >> 38) & 1, admin = (caps >> 21) & 1;
		const char *mode = lockdown(lock, sizeof lock);
		if (geteuid() != 0 && !admin && !(bpf && perfmon))
			say(why, whylen, "BPF needs root or CAP_BPF and CAP_PERFMON (uid %u has%s%s%s)",
			    (unsigned)geteuid(), bpf ? " CAP_BPF" : "", perfmon ? " CAP_PERFMON" : "",
			    bpf || perfmon ? " only" : " neither");
		else if (mode)
			say(why, whylen, "the kernel's lockdown (%s) refuses BPF", mode);
		else
			say(why, whylen, "the kernel refused bpf() with %s although the capabilities are there "
			    "(seccomp, an LSM, or kernel.unprivileged_bpf_disabled?): %s", strerror(err), detail);
		return -err;
	}
	if (err == EINVAL || err == EOPNOTSUPP || err == ENOTSUPP_ || err == ESRCH || err == E2BIG) {
		say(why, whylen, "the kernel cannot load the socket iterators (iter/tcp, iter/udp need Linux 5.10 or later "
		    "with CONFIG_BPF_SYSCALL and BTF): %s", detail);
		return -err;
	}
	say(why, whylen, "loading the BPF socket iterators failed: %s (%s)", strerror(err), detail);
	return -err;
}

static int on_bpffs(const char *path)
{
	struct statfs fs;
	return statfs(path, &fs) == 0 && (unsigned long)fs.f_type == BPF_FS_MAGIC_;
}

/* A pinned copy is used only when root made it and nobody else can replace it. */
static int trusted(const char *path, int dir)
{
	struct stat st;
	if (stat(path, &st) != 0 || st.st_uid != 0 || (st.st_mode & 022))
		return 0;
	return dir ? S_ISDIR(st.st_mode) : S_ISREG(st.st_mode);
}

static int pinned_available(void)
{
	char p[256];
	if (!trusted(PIN_ROOT, 1) || !trusted(PIN_DIR, 1))
		return 0;
	for (int i = 0; i < 2; i++) {
		snprintf(p, sizeof p, PIN_DIR "/%s", names[i]);
		if (!trusted(p, 0) || access(p, R_OK) != 0)
			return 0;
	}
	return 1;
}

/* Removes NAME in the directory AT: a pin (a file) or a directory of them, a few levels deep at most. */
static void remove_at(int at, const char *name, int depth)
{
	if (unlinkat(at, name, 0) == 0 || (errno != EISDIR && errno != EPERM))
		return;
	int fd = openat(at, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd >= 0) {
		DIR *d = depth < 4 ? fdopendir(fd) : NULL;
		if (d) {
			struct dirent *e;
			while ((e = readdir(d)))
				if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
					remove_at(dirfd(d), e->d_name, depth + 1);
			closedir(d);
		} else
			close(fd);
	}
	unlinkat(at, name, AT_REMOVEDIR);
}

static int stale(const char *name)
{
	return strcmp(name, ".") && strcmp(name, "..") && strcmp(name, CEP_BPF_BUILD_ID);
}

/* Under the lock: everything in the pin root but this build's directory goes (see the top). */
static void sweep(int rootfd)
{
	int fd = dup(rootfd);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	if (!d) {
		if (fd >= 0)
			close(fd);
		return;
	}
	rewinddir(d);
	struct dirent *e;
	while ((e = readdir(d)))
		if (stale(e->d_name))
			remove_at(rootfd, e->d_name, 0);
	closedir(d);
}

/* The pin root, opened for the lock; -1 when it is not there or not root's alone. */
static int open_root(void)
{
	int fd = open(PIN_ROOT, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	struct stat st;
	if (fd >= 0 && (fstat(fd, &st) != 0 || st.st_uid != 0 || (st.st_mode & 022))) {
		close(fd);
		fd = -1;
	}
	return fd;
}

/* flock(LOCK_EX) on the pin root, waiting at most about half a second: the holder only pins, sweeps
 * or renames (well under a millisecond), so a longer wait means it is stopped; then we go on
 * without (the caller runs loaded, unpinned). */
static int lock_root(int rootfd)
{
	struct timespec pause = { 0, 2 * 1000 * 1000 };
	for (int i = 0; i < 250; i++) {
		if (flock(rootfd, LOCK_EX | LOCK_NB) == 0)
			return 0;
		if (errno != EWOULDBLOCK && errno != EINTR)
			return -1;
		nanosleep(&pause, NULL);
	}
	return -1;
}

/* A run that opens the pins: one readdir of the pin root; when it holds anything but this build's
 * directory (a dead run's tmp-*, another build's pins), the lock without waiting and a sweep. A
 * busy lock means another run is pinning, and that one sweeps. Errors are ignored. */
static void tidy(void)
{
	int rootfd = open_root();
	if (rootfd < 0)
		return;
	int fd = dup(rootfd), dirty = 0;
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	if (d) {
		struct dirent *e;
		while (!dirty && (e = readdir(d)))
			dirty = stale(e->d_name);
		closedir(d);
	} else if (fd >= 0)
		close(fd);
	if (dirty && flock(rootfd, LOCK_EX | LOCK_NB) == 0)
		sweep(rootfd);
	close(rootfd); /* and the lock with it */
}

/* Pins both links into a private directory, then renames it into place: a reader sees either no
 * directory or a complete one. All of it under the lock on the pin root (see the top), which also
 * sweeps. Returns 0 or a reason why not (not fatal: the run goes on loaded). */
static const char *pin(const struct cep_reader *r)
{
	char tmp[64], p[80];
	if (!on_bpffs(BPFFS))
		return "no bpffs mounted on " BPFFS;
	if (mkdir(PIN_ROOT, 0700) != 0 && errno != EEXIST)
		return "cannot create " PIN_ROOT;
	int rootfd = open_root();
	if (rootfd < 0)
		return PIN_ROOT " is not root's alone";
	if (lock_root(rootfd) != 0) {
		close(rootfd);
		return "another run holds the lock on " PIN_ROOT;
	}
	sweep(rootfd);
	const char *why = NULL;
	if (pinned_available())
		goto out; /* another run pinned this build while we loaded: ours are not needed */
	/* this build's directory, but not usable (incomplete, or not root's): replaced */
	remove_at(rootfd, CEP_BPF_BUILD_ID, 0);
	/* bpffs refuses names with a dot */
	snprintf(tmp, sizeof tmp, "tmp-" CEP_BPF_BUILD_ID "-%d", (int)getpid());
	if (mkdirat(rootfd, tmp, 0700) != 0) {
		why = "cannot create a directory in " PIN_ROOT;
		goto out;
	}
	for (int i = 0; i < 2; i++) {
		snprintf(p, sizeof p, PIN_ROOT "/%s/%s", tmp, names[i]);
		if (bpf_obj_pin(r->link_fds[i], p) != 0 || chmod(p, 0600) != 0) {
			remove_at(rootfd, tmp, 0);
			why = "pinning the iterator links failed";
			goto out;
		}
	}
	if (renameat(rootfd, tmp, rootfd, CEP_BPF_BUILD_ID) != 0) {
		remove_at(rootfd, tmp, 0);
		why = "renaming the pin directory failed";
	}
	/* our bpf_link objects keep their fds; the pins outlive this process */
out:
	close(rootfd); /* and the lock with it */
	return why;
}

/* Frees what a load made (links, fds, the libbpf object); the reader itself stays. */
static void unload(struct cep_reader *r)
{
	for (int i = 0; i < 2; i++) {
		if (r->own_fds && r->link_fds[i] >= 0)
			close(r->link_fds[i]);
		r->link_fds[i] = -1;
		bpf_link__destroy(r->links[i]);
		r->links[i] = NULL;
	}
	r->own_fds = 0;
	cep_ports__destroy(r->skel);
	r->skel = NULL;
}

/* --- the load cache ---------------------------------------------------------------------------
 * A libbpf load costs 30-40 ms and ~10 MB, nearly all of it parsing the kernel's BTF (5-6 MB):
 * for the CO-RE relocations and for the iterators' attach targets. Both results depend only on
 * this program and the running kernel, so a root run that loaded through libbpf writes them down
 * (the relocated instructions of each program and the BTF id of bpf_iter_tcp / bpf_iter_udp) in
 * <cache dir>/<build id>.iter (CEP_CACHE_DIR unless the caller names another), and later runs load with two plain BPF_PROG_LOADs (the verifier still
 * checks everything) and BPF_LINK_CREATEs: no libbpf object, no BTF parsed.
 * Trusted only when the directory and the file are root's and not group/other-writable (the
 * directory's parent too), and when the content matches: magic, format, record version, build id,
 * libbpf version, the kernel's identity (uname, boot id, size and ends of its BTF), sizes and a
 * checksum. Anything else, or a refused load, falls back to libbpf, which rewrites the file. It is
 * written complete (O_TMPFILE, then linked into place), so a reader sees none or a whole one. */
#define CACHE_NAME CEP_BPF_BUILD_ID ".iter"
#define CACHE_MAGIC "CEPBPFC\n"
#define CACHE_FORMAT 1
#define CACHE_MAX_INSNS 65536
#define LICENSE_ "Dual MIT/GPL" /* ports.bpf.c's: the iterator helpers are GPL-only */

struct cache_head {
	char magic[8];
	uint32_t format, record_version;
	char build_id[32], libbpf[16];
	char key[448];                 /* kernel_key() */
	struct {
		char name[16];
		uint32_t attach_btf_id, insn_cnt;
	} prog[2];
	uint64_t size;                 /* of the whole file */
	uint64_t checksum;             /* FNV-1a of the whole file, this field 0 */
};

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
	const unsigned char *b = p;
	while (n--)
		h = (h ^ *b++) * 0x100000001b3ULL;
	return h;
}
#define FNV0 0xcbf29ce484222325ULL
/* the layout is a file format (tests/integration/bpf-native.sh forges the key and the build id) */
_Static_assert(sizeof(struct cache_head) == 576, "cache_head layout");
_Static_assert(offsetof(struct cache_head, build_id) == 16, "cache_head layout");
_Static_assert(offsetof(struct cache_head, key) == 64, "cache_head layout");
_Static_assert(offsetof(struct cache_head, checksum) == 568, "cache_head layout");

/* The running kernel's identity, for the cache: uname, this boot, and the size and both ends of its
 * BTF (what the relocations and the attach ids come from). 0, or -1 when something is unreadable. */
static int kernel_key(char *out, size_t len)
{
	struct utsname u;
	char boot[64] = "", head[1024], tail[1024];
	struct stat st;
	if (uname(&u) != 0)
		return -1;
	int fd = open("/proc/sys/kernel/random/boot_id", O_RDONLY | O_CLOEXEC);
	ssize_t n = fd >= 0 ? read(fd, boot, sizeof boot - 1) : -1;
	if (fd >= 0)
		close(fd);
	if (n < 32)
		return -1;
	boot[n] = 0;
	trim(boot);
	fd = open("/sys/kernel/btf/vmlinux", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	int ok = fstat(fd, &st) == 0 && st.st_size > (off_t)sizeof tail &&
		 pread(fd, head, sizeof head, 0) == (ssize_t)sizeof head &&
		 pread(fd, tail, sizeof tail, st.st_size - (off_t)sizeof tail) == (ssize_t)sizeof tail;
	close(fd);
	if (!ok)
		return -1;
	n = snprintf(out, len, "%s %s %s %s; boot %s; btf %lld %016llx %016llx", u.sysname, u.release, u.version,
		     u.machine, boot, (long long)st.st_size, (unsigned long long)fnv(FNV0, head, sizeof head),
		     (unsigned long long)fnv(FNV0, tail, sizeof tail));
	return n > 0 && (size_t)n < len ? 0 : -1;
}

/* A directory root's alone, in a parent root's alone; creates it (0700) when asked. */
static int cache_dirfd(const char *cache_dir, int create, const char **why)
{
	char parent[256];
	struct stat st;
	if (!cache_dir || !cache_dir[0] || snprintf(parent, sizeof parent, "%s", cache_dir) >= (int)sizeof parent) {
		*why = "no cache directory";
		return -1;
	}
	char *slash = strrchr(parent, '/');
	if (!slash || slash == parent)
		slash = parent + 1;
	*slash = 0;
	if (stat(parent, &st) != 0 || !S_ISDIR(st.st_mode) || st.st_uid != 0 || (st.st_mode & 022)) {
		*why = "its parent directory is missing or not root's alone";
		return -1;
	}
	if (create && mkdir(cache_dir, 0700) != 0 && errno != EEXIST) {
		*why = "cannot create the directory";
		return -1;
	}
	int fd = open(cache_dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		*why = errno == ENOENT ? "none yet" : "cannot open the directory";
		return -1;
	}
	if (fstat(fd, &st) != 0 || st.st_uid != 0 || (st.st_mode & 022)) {
		close(fd);
		*why = "the directory is not root's alone";
		return -1;
	}
	return fd;
}

/* Loads both programs from the cache into the reader (own link fds): 0, or -1 with a reason in *why. */
static int load_cached(struct cep_reader *r, const char **why)
{
	struct stat st;
	struct cache_head *h = NULL;
	int prog_fd = -1;
	*why = NULL;
	if (kernel_key(r->kkey, sizeof r->kkey) != 0) {
		r->kkey[0] = 0;
		*why = "the kernel's identity is unreadable";
		return -1;
	}
	if (!r->use_cache) {
		*why = "no cache directory";
		return -1;
	}
	int dirfd = cache_dirfd(r->cache_dir, 0, why);
	if (dirfd < 0)
		return -1;
	int fd = openat(dirfd, CACHE_NAME, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	close(dirfd);
	if (fd < 0) {
		*why = errno == ENOENT ? "none yet" : "cannot open the file";
		return -1;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_uid != 0 || (st.st_mode & 022)) {
		close(fd);
		*why = "the file is not root's alone";
		return -1;
	}
	if (st.st_size < (off_t)sizeof *h || st.st_size > (off_t)(sizeof *h + 2 * CACHE_MAX_INSNS * sizeof(struct bpf_insn))) {
		close(fd);
		*why = "the file is damaged (its size)";
		return -1;
	}
	h = malloc((size_t)st.st_size);
	ssize_t n = h ? pread(fd, h, (size_t)st.st_size, 0) : -1;
	close(fd);
	if (n != st.st_size) {
		free(h);
		*why = "cannot read the file";
		return -1;
	}
	uint64_t sum = h->checksum;
	h->checksum = 0;
	*why = "the file is damaged, or of another format";
	if (memcmp(h->magic, CACHE_MAGIC, 8) || h->format != CACHE_FORMAT || h->size != (uint64_t)st.st_size ||
	    fnv(FNV0, h, (size_t)st.st_size) != sum)
		goto fail;
	char lib[16];
	snprintf(lib, sizeof lib, "%u.%u", libbpf_major_version(), libbpf_minor_version());
	*why = "it is for another program build";
	if (h->record_version != CEP_RECORD_VERSION || strncmp(h->build_id, CEP_BPF_BUILD_ID, sizeof h->build_id) ||
	    h->build_id[sizeof h->build_id - 1] || strncmp(h->libbpf, lib, sizeof h->libbpf))
		goto fail;
	h->key[sizeof h->key - 1] = 0;
	if (strcmp(h->key, r->kkey)) {
		*why = "it is for another kernel or boot";
		goto fail;
	}
	uint64_t insns = 0;
	*why = "the file is damaged";
	for (int i = 0; i < 2; i++) {
		if (!h->prog[i].attach_btf_id || !h->prog[i].insn_cnt || h->prog[i].insn_cnt > CACHE_MAX_INSNS ||
		    h->prog[i].name[sizeof h->prog[i].name - 1])
			goto fail;
		insns += h->prog[i].insn_cnt;
	}
	if (sizeof *h + insns * sizeof(struct bpf_insn) != h->size)
		goto fail;
	const struct bpf_insn *insn = (const struct bpf_insn *)(h + 1);
	for (int i = 0; i < 2; i++) {
		LIBBPF_OPTS(bpf_prog_load_opts, opts, .expected_attach_type = BPF_TRACE_ITER,
			    .attach_btf_id = h->prog[i].attach_btf_id);
		prog_fd = bpf_prog_load(BPF_PROG_TYPE_TRACING, h->prog[i].name, LICENSE_, insn, h->prog[i].insn_cnt, &opts);
		if (prog_fd < 0) {
			*why = "the kernel refused its programs";
			goto fail;
		}
		insn += h->prog[i].insn_cnt;
		r->link_fds[i] = bpf_link_create(prog_fd, 0, BPF_TRACE_ITER, NULL);
		close(prog_fd); /* the link holds the program */
		if (r->link_fds[i] < 0) {
			*why = "the kernel refused to attach its programs";
			goto fail;
		}
		r->own_fds = 1;
	}
	free(h);
	return 0;
fail:
	r->own_fds = 1;
	unload(r);
	free(h);
	return -1;
}

/* The BTF id of the program's attach target (bpf_iter_tcp, ...), found by libbpf in the kernel's
 * BTF (parsed once more: the cache is written once per boot). bpf_prog_info says it too on 5.19+,
 * but the binary is built against Debian 11's kernel headers (5.10), whose struct lacks the field. */
static uint32_t attach_btf_id(struct bpf_program *prog)
{
	const char *sec = bpf_program__section_name(prog); /* "iter/tcp": libbpf adds "bpf_iter_" */
	if (strncmp(sec, "iter/", 5))
		return 0;
	int id = libbpf_find_vmlinux_btf_id(sec + 5, BPF_TRACE_ITER);
	return id > 0 ? (uint32_t)id : 0;
}

/* After a libbpf load as root: writes the cache. NULL, or why not. */
static const char *write_cache(struct cep_reader *r)
{
	const char *why = NULL;
	if (geteuid() != 0)
		return "not root";
	if (!r->kkey[0] && kernel_key(r->kkey, sizeof r->kkey) != 0)
		return "the kernel's identity is unreadable";
	struct bpf_program *progs[2] = { r->skel->progs.cep_tcp, r->skel->progs.cep_udp };
	size_t size = sizeof(struct cache_head);
	for (int i = 0; i < 2; i++)
		size += bpf_program__insn_cnt(progs[i]) * sizeof(struct bpf_insn);
	struct cache_head *h = calloc(1, size);
	if (!h)
		return "out of memory";
	memcpy(h->magic, CACHE_MAGIC, 8);
	h->format = CACHE_FORMAT;
	h->record_version = CEP_RECORD_VERSION;
	snprintf(h->build_id, sizeof h->build_id, "%s", CEP_BPF_BUILD_ID);
	snprintf(h->libbpf, sizeof h->libbpf, "%u.%u", libbpf_major_version(), libbpf_minor_version());
	snprintf(h->key, sizeof h->key, "%s", r->kkey);
	char *at = (char *)(h + 1);
	for (int i = 0; i < 2; i++) {
		size_t cnt = bpf_program__insn_cnt(progs[i]);
		snprintf(h->prog[i].name, sizeof h->prog[i].name, "%s", bpf_program__name(progs[i]));
		h->prog[i].attach_btf_id = attach_btf_id(progs[i]);
		h->prog[i].insn_cnt = (uint32_t)cnt;
		if (!h->prog[i].attach_btf_id || !cnt || cnt > CACHE_MAX_INSNS) {
			free(h);
			return "the programs' attach targets or instructions are unknown";
		}
		memcpy(at, bpf_program__insns(progs[i]), cnt * sizeof(struct bpf_insn));
		at += cnt * sizeof(struct bpf_insn);
	}
	h->size = size;
	h->checksum = fnv(FNV0, h, size);

	int dirfd = cache_dirfd(r->cache_dir, 1, &why), fd = -1;
	if (dirfd < 0)
		goto out;
	/* an unnamed file, linked into place once complete */
	fd = openat(dirfd, ".", O_TMPFILE | O_WRONLY | O_CLOEXEC, 0600);
	if (fd < 0 || write(fd, h, size) != (ssize_t)size || fchmod(fd, 0600) != 0) {
		why = "cannot write a file there";
		goto out;
	}
	char self[64];
	snprintf(self, sizeof self, "/proc/self/fd/%d", fd);
	(void)unlinkat(dirfd, CACHE_NAME, 0); /* one for another kernel, or damaged */
	if (linkat(fd, "", dirfd, CACHE_NAME, AT_EMPTY_PATH) != 0 && errno != EEXIST &&
	    linkat(AT_FDCWD, self, dirfd, CACHE_NAME, AT_SYMLINK_FOLLOW) != 0 && errno != EEXIST) {
		why = "cannot link a file there";
		goto out;
	}
	/* other builds' files go (the directory holds only this build's) */
	int dfd = dup(dirfd);
	DIR *d = dfd >= 0 ? fdopendir(dfd) : NULL;
	if (d) {
		struct dirent *e;
		while ((e = readdir(d))) {
			size_t l = strlen(e->d_name);
			if (l > 5 && !strcmp(e->d_name + l - 5, ".iter") && strcmp(e->d_name, CACHE_NAME))
				(void)unlinkat(dirfd, e->d_name, 0);
		}
		closedir(d);
	} else if (dfd >= 0)
		close(dfd);
out:
	if (fd >= 0)
		close(fd);
	if (dirfd >= 0)
		close(dirfd);
	free(h);
	return why;
}

static void unlink_cache(const char *cache_dir)
{
	const char *why;
	int dirfd = cache_dirfd(cache_dir, 0, &why);
	if (dirfd < 0)
		return;
	int dfd = dup(dirfd);
	DIR *d = dfd >= 0 ? fdopendir(dfd) : NULL;
	if (d) {
		struct dirent *e;
		while ((e = readdir(d))) {
			size_t l = strlen(e->d_name);
			if (l > 5 && !strcmp(e->d_name + l - 5, ".iter"))
				(void)unlinkat(dirfd, e->d_name, 0);
		}
		closedir(d);
	} else if (dfd >= 0)
		close(dfd);
	close(dirfd);
	(void)rmdir(cache_dir);
}

/* Loads the program into the reader (from the cache, else through libbpf) and pins it unless
 * asked not to: 0 with the note in why, or -errno with the reason. On failure the reader holds
 * nothing (the caller frees it). */
static int load(struct cep_reader *r, int flags, char *why, size_t whylen)
{
	int err;
	const char *cache_why = NULL;
	char cache_note[400] = "";
	if (load_cached(r, &cache_why) == 0) {
		snprintf(cache_note, sizeof cache_note, " from the cache in %s", r->cache_dir);
		goto loaded;
	}
	if (access("/sys/kernel/btf/vmlinux", R_OK) != 0) {
		err = errno;
		say(why, whylen, "the kernel has no BTF (/sys/kernel/btf/vmlinux: %s; CONFIG_DEBUG_INFO_BTF is needed for CO-RE)",
		    strerror(err));
		return err == EACCES ? -EPERM : -ENOENT;
	}
	r->first_msg[0] = r->verifier_msg[0] = 0;
	r->skel = cep_ports__open();
	if (!r->skel) {
		err = errno ? errno : EINVAL;
		return refused(r, err, why, whylen);
	}
	err = cep_ports__load(r->skel);
	if (err) {
		err = err < 0 ? -err : err;
		unload(r);
		return refused(r, err, why, whylen);
	}
	struct bpf_program *progs[2] = { r->skel->progs.cep_tcp, r->skel->progs.cep_udp };
	for (int i = 0; i < 2; i++) {
		r->links[i] = bpf_program__attach_iter(progs[i], NULL);
		if (!r->links[i]) {
			err = errno ? errno : EINVAL;
			unload(r);
			return refused(r, err, why, whylen);
		}
		r->link_fds[i] = bpf_link__fd(r->links[i]);
	}
	if (r->use_cache) {
		const char *not_cached = write_cache(r);
		if (not_cached)
			snprintf(cache_note, sizeof cache_note, "; not cached in %s: %s", r->cache_dir, not_cached);
		else if (cache_why && strcmp(cache_why, "none yet"))
			snprintf(cache_note, sizeof cache_note, "; cache in %s rewritten (%s)", r->cache_dir, cache_why);
		else
			snprintf(cache_note, sizeof cache_note, "; cached in %s", r->cache_dir);
	}
loaded:;
	int cached = !r->skel;
	const char *not_pinned = (flags & CEP_OPEN_NO_PIN) ? "pinning not asked for" : pin(r);
	if (not_pinned) {
		r->mode = cached ? CEP_MODE_CACHED : CEP_MODE_LOADED;
		if (cached)
			say(why, whylen, "BPF socket iterators loaded for this run%s (not pinned: %s)", cache_note, not_pinned);
		else
			say(why, whylen, "BPF socket iterators loaded for this run (not pinned: %s%s)", not_pinned, cache_note);
	} else {
		r->mode = CEP_MODE_LOADED_PINNED;
		if (cached)
			say(why, whylen, "BPF socket iterators loaded%s and pinned in " PIN_DIR, cache_note);
		else
			say(why, whylen, "BPF socket iterators loaded and pinned in " PIN_DIR "%s", cache_note);
	}
	return 0;
}

/* Opens the reader (see cep_bpf.h). */
static int open_reader(struct cep_reader *r, int flags, char *why, size_t whylen)
{
	if (!(flags & (CEP_OPEN_NO_PIN | CEP_OPEN_NO_REUSE)) && pinned_available()) {
		/* one trial open proves the pin is readable by us (root; or a mode the admin chose) */
		char p[256];
		snprintf(p, sizeof p, PIN_DIR "/%s", names[0]);
		int fd = open(p, O_RDONLY | O_CLOEXEC);
		if (fd >= 0) {
			close(fd);
			tidy();
			r->mode = CEP_MODE_PINNED;
			say(why, whylen, "BPF socket iterators pinned in " PIN_DIR);
			return 0;
		}
	}
	return load(r, flags, why, whylen);
}

struct cep_reader *cep_reader_open(int flags, const char *cache_dir, int *err, char *why, size_t whylen)
{
	if (why && whylen)
		why[0] = 0;
	if (err)
		*err = 0;
	if (!cache_dir)
		cache_dir = CEP_CACHE_DIR;
	struct cep_reader *r = calloc(1, sizeof *r);
	int e = r ? 0 : ENOMEM;
	if (r && snprintf(r->cache_dir, sizeof r->cache_dir, "%s", cache_dir) >= (int)sizeof r->cache_dir)
		e = ENAMETOOLONG;
	if (e) {
		say(why, whylen, "cannot open the BPF reader: %s", strerror(e));
		free(r);
		if (err)
			*err = e;
		return NULL;
	}
	r->link_fds[0] = r->link_fds[1] = -1;
	r->use_cache = !(flags & CEP_OPEN_NO_CACHE) && cache_dir[0];
	/* the hook is process-wide (see `opening`): set on every open, harmless when it already is */
	libbpf_set_print(keep_message);
	opening = r;
	int rc = open_reader(r, flags, why, whylen);
	opening = NULL;
	if (rc < 0) {
		unload(r);
		free(r);
		if (err)
			*err = -rc;
		return NULL;
	}
	return r;
}

int cep_reader_iter(const struct cep_reader *r, int which)
{
	if (!r || !r->mode)
		return -EBADF;
	if (which != CEP_ITER_TCP && which != CEP_ITER_UDP)
		return -EINVAL;
	int fd;
	if (r->mode == CEP_MODE_PINNED) {
		char p[256];
		snprintf(p, sizeof p, PIN_DIR "/%s", names[which]);
		fd = open(p, O_RDONLY | O_CLOEXEC);
	} else {
		fd = bpf_iter_create(r->link_fds[which]);
		if (fd >= 0)
			(void)fcntl(fd, F_SETFD, FD_CLOEXEC);
		else
			errno = -fd;
	}
	return fd >= 0 ? fd : -errno;
}

int cep_reader_mode(const struct cep_reader *r)
{
	return r ? r->mode : 0;
}

void cep_reader_close(struct cep_reader *r)
{
	if (!r)
		return;
	unload(r);
	free(r);
}

long cep_bpf_read(int fd, void *buf, size_t len)
{
	size_t got = 0;
	len -= len % sizeof(struct cep_record);
	while (got < len) {
		ssize_t n = read(fd, (char *)buf + got, len - got);
		if (n > 0)
			got += (size_t)n;
		else if (n == 0)
			break;
		else if (errno != EINTR && errno != EAGAIN)
			return got ? (long)got : -errno;
	}
	return (long)got;
}

int cep_bpf_record_size(void)
{
	return (int)sizeof(struct cep_record);
}

int cep_bpf_record_version(void)
{
	return CEP_RECORD_VERSION;
}

const char *cep_bpf_build_id(void)
{
	return CEP_BPF_BUILD_ID;
}

int cep_bpf_unpin_all(const char *cache_dir)
{
	unlink_cache(cache_dir ? cache_dir : CEP_CACHE_DIR);
	int rootfd = open(PIN_ROOT, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (rootfd < 0)
		return errno == ENOENT ? 0 : -errno;
	/* not while a run pins (when the lock stays busy, anyway) */
	(void)lock_root(rootfd);
	sweep(rootfd);
	remove_at(rootfd, CEP_BPF_BUILD_ID, 0);
	close(rootfd);
	return rmdir(PIN_ROOT) == 0 || errno == ENOENT ? 0 : -errno;
}

#ifdef CEP_FCNTL64_SHIM
/* For a link against an older glibc (before 2.28 there is no fcntl64): Debian 12's libbpf.a was
 * built against glibc 2.36 and calls fcntl64 (F_DUPFD_CLOEXEC only), which on 64-bit is fcntl. */
int fcntl64(int fd, int cmd, ...)
{
	va_list ap;
	va_start(ap, cmd);
	long arg = va_arg(ap, long);
	va_end(ap);
	return fcntl(fd, cmd, arg);
}
#endif
