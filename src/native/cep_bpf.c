// SPDX-License-Identifier: MIT
/*
 * Loader for ports.bpf.c (see cep_bpf.h for the ABI, README.md for the design).
 *
 * The expensive part of BPF is loading: libbpf parses the kernel's whole BTF for the CO-RE
 * relocations (12 ms of a 16-26 ms load here). So the first root run pins the two iterator links
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

/* The record is an ABI (P/Invoke reads it by offset): keep the documented layout. */
_Static_assert(sizeof(struct cep_record) == 68, "cep_record is 68 bytes");
_Static_assert(offsetof(struct cep_record, fastreuse) == 4, "cep_record layout");
_Static_assert(offsetof(struct cep_record, lport) == 6, "cep_record layout");
_Static_assert(offsetof(struct cep_record, tw_age_ms) == 16, "cep_record layout");
_Static_assert(offsetof(struct cep_record, laddr) == 28, "cep_record layout");
_Static_assert(offsetof(struct cep_record, raddr) == 44, "cep_record layout");
_Static_assert(offsetof(struct cep_record, tw_ts_recent_stamp) == 60, "cep_record layout");
_Static_assert(offsetof(struct cep_record, bound_dev_if) == 64, "cep_record layout");

static const char *const names[2] = { "tcp", "udp" };

static struct {
	int mode;                  /* CEP_BPF_MODE_*, 0 = closed */
	struct cep_ports *skel;    /* loaded modes */
	struct bpf_link *links[2];
} state;

/* libbpf's messages: never printed. The first warning of a failed step is kept for `why` (the
 * later ones only say that the object and the skeleton failed too); of a verifier log, the line
 * that names the refused instruction. */
static char first_msg[256];
static char verifier_msg[256];

static void trim(char *m)
{
	size_t n = strlen(m);
	while (n > 0 && (m[n - 1] == '\n' || m[n - 1] == ' '))
		m[--n] = 0;
}

static void keep_verifier_line(const char *log)
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
	snprintf(verifier_msg, sizeof verifier_msg, "verifier: %.*s", (int)(end - start), start);
}

static int keep_message(enum libbpf_print_level level, const char *fmt, va_list args)
{
	if (level != LIBBPF_WARN)
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
		keep_verifier_line(msg);
	else if (!first_msg[0] && !strstr(msg, "RLIMIT_MEMLOCK")) {
		/* (libbpf's memlock probe fails first whenever bpf() is refused: not the news) */
		const char *m = strncmp(msg, "libbpf: ", 8) ? msg : msg + 8;
		snprintf(first_msg, sizeof first_msg, "%s", m);
		trim(first_msg);
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
static int refused(int err, char *why, size_t whylen)
{
	char lock[128];
	char detail[512];
	snprintf(detail, sizeof detail, "%s%s%s", first_msg[0] ? first_msg : "no detail from libbpf",
		 verifier_msg[0] ? "; " : "", verifier_msg);
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
static const char *pin(void)
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
		if (bpf_link__pin(state.links[i], p) != 0 || chmod(p, 0600) != 0) {
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

static void unload(void)
{
	for (int i = 0; i < 2; i++) {
		bpf_link__destroy(state.links[i]);
		state.links[i] = NULL;
	}
	cep_ports__destroy(state.skel);
	state.skel = NULL;
}

static int load(int flags, char *why, size_t whylen)
{
	int err;
	if (access("/sys/kernel/btf/vmlinux", R_OK) != 0) {
		err = errno;
		say(why, whylen, "the kernel has no BTF (/sys/kernel/btf/vmlinux: %s; CONFIG_DEBUG_INFO_BTF is needed for CO-RE)",
		    strerror(err));
		return err == EACCES ? -EPERM : -ENOENT;
	}
	first_msg[0] = verifier_msg[0] = 0;
	state.skel = cep_ports__open();
	if (!state.skel) {
		err = errno ? errno : EINVAL;
		return refused(err, why, whylen);
	}
	err = cep_ports__load(state.skel);
	if (err) {
		err = err < 0 ? -err : err;
		unload();
		return refused(err, why, whylen);
	}
	struct bpf_program *progs[2] = { state.skel->progs.cep_tcp, state.skel->progs.cep_udp };
	for (int i = 0; i < 2; i++) {
		state.links[i] = bpf_program__attach_iter(progs[i], NULL);
		if (!state.links[i]) {
			err = errno ? errno : EINVAL;
			unload();
			return refused(err, why, whylen);
		}
	}
	const char *not_pinned = (flags & CEP_BPF_NO_PIN) ? "pinning not asked for" : pin();
	if (not_pinned) {
		state.mode = CEP_BPF_MODE_LOADED;
		say(why, whylen, "BPF socket iterators loaded for this run (not pinned: %s)", not_pinned);
	} else {
		state.mode = CEP_BPF_MODE_LOADED_PINNED;
		say(why, whylen, "BPF socket iterators loaded and pinned in " PIN_DIR);
	}
	return 1;
}

int cep_bpf_open(int flags, char *why, size_t whylen)
{
	libbpf_set_print(keep_message);
	if (why && whylen)
		why[0] = 0;
	if (state.mode)
		return 1;
	if (!(flags & (CEP_BPF_NO_PIN | CEP_BPF_NO_REUSE)) && pinned_available()) {
		/* one trial open proves the pin is readable by us (root; or a mode the admin chose) */
		char p[256];
		snprintf(p, sizeof p, PIN_DIR "/%s", names[0]);
		int fd = open(p, O_RDONLY | O_CLOEXEC);
		if (fd >= 0) {
			close(fd);
			tidy();
			state.mode = CEP_BPF_MODE_PINNED;
			say(why, whylen, "BPF socket iterators pinned in " PIN_DIR);
			return 1;
		}
	}
	return load(flags, why, whylen);
}

int cep_bpf_iter(int handle, int which)
{
	if (handle != 1 || !state.mode)
		return -EBADF;
	if (which != CEP_BPF_TCP && which != CEP_BPF_UDP)
		return -EINVAL;
	int fd;
	if (state.mode == CEP_BPF_MODE_PINNED) {
		char p[256];
		snprintf(p, sizeof p, PIN_DIR "/%s", names[which]);
		fd = open(p, O_RDONLY | O_CLOEXEC);
	} else {
		fd = bpf_iter_create(bpf_link__fd(state.links[which]));
		if (fd >= 0)
			(void)fcntl(fd, F_SETFD, FD_CLOEXEC);
		else
			errno = -fd;
	}
	return fd >= 0 ? fd : -errno;
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

int cep_bpf_mode(int handle)
{
	return handle == 1 ? state.mode : 0;
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

int cep_bpf_unpin_all(void)
{
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

void cep_bpf_close(int handle)
{
	if (handle != 1)
		return;
	unload();
	state.mode = 0;
}
