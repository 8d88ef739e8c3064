/*
 * Runs before the .NET runtime starts: a constructor of the executable (.init_array runs before
 * main, where NativeAOT initializes its runtime). Linked into the binary with the glibc shims
 * (src/build/GlibcFloor.targets). Plain C on purpose: it must work where the runtime cannot.
 *
 * - Standard descriptors 0-2 that are closed get /dev/null (or, where there is none, a read-only
 *   descriptor of "/", which any write refuses), so that no file opened later takes their number
 *   and receives the output.
 * - One malloc arena (M_ARENA_MAX 1). glibc gives each new thread an arena of its own and
 *   reserves 64-128 MB of address space for it; under a small `ulimit -v` that reservation, made
 *   by the runtime's finalizer thread while the GC reserves its heap, made the start fail at random
 *   (exit 255, no output). The plugin's threads barely use malloc: one arena costs nothing.
 * - The runtime's DOTNET_* and COMPlus_* variables are removed from the environment: they tune
 *   the .NET runtime (GC region sizes, heap limits, stress modes), and one set for other programs
 *   on the host, or by a caller, must not be able to stop this binary from starting (seen:
 *   DOTNET_GCRegionSize=1, exit 255 with no output). The plugin is tuned when it is built.
 * - A supervisor. The process the monitoring core started forks once: the child runs the plugin,
 *   the parent only waits for it. When the child has written its answer it closes its standard
 *   output and error and reports its exit code through a pipe (CEP_REPORT_FD, set here and nowhere
 *   else); the parent exits with that code at once. So a thread of the child stuck in the kernel
 *   (a read of a hung FUSE or NFS tree, which even SIGKILL cannot end until the file system
 *   answers) no longer keeps the monitoring core waiting for the process it started: that process
 *   is gone, and the pipe it reads is closed. A child that ends without reporting (the runtime
 *   could not start, a signal) becomes one UNKNOWN line and exit 3 written by the parent, never a
 *   bare 255 or 134 and a runtime trace. Where no process can be forked (RLIMIT_NPROC) the plugin
 *   runs unsupervised, as it did before.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#define REPORT_VARIABLE "CEP_REPORT_FD"

static void fill_standard_descriptors(void)
{
	for (int fd = 0; fd <= 2; fd++) {
		if (fcntl(fd, F_GETFD) >= 0)
			continue;
		/* open(2) returns the lowest free number: this one, since those below are open. */
		int filler = open("/dev/null", O_RDWR);
		if (filler < 0)
			filler = open("/", O_RDONLY | O_DIRECTORY);
		if (filler >= 0 && filler != fd)
			close(filler);
	}
}

static void clean_environment(void)
{
	if (environ == NULL)
		return;
	char **kept = environ;
	for (char **each = environ; *each != NULL; each++) {
		if (strncmp(*each, "DOTNET_", 7) != 0 && strncmp(*each, "COMPlus_", 8) != 0 &&
		    strncmp(*each, REPORT_VARIABLE "=", sizeof REPORT_VARIABLE) != 0)
			*kept++ = *each;
	}
	*kept = NULL;
}

static void write_all(int fd, const char *text, size_t length)
{
	while (length > 0) {
		ssize_t n = write(fd, text, length);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return;
		text += n;
		length -= (size_t)n;
	}
}

/* The first line of what the child wrote on stderr, printable ASCII only, for the UNKNOWN line. */
static void first_line(const char *text, size_t length, char *out, size_t size)
{
	size_t o = 0;
	for (size_t i = 0; i < length && text[i] != '\n' && o + 1 < size; i++)
		out[o++] = (text[i] >= ' ' && text[i] <= '~' && text[i] != '|') ? text[i] : '?';
	out[o] = '\0';
}

/* The parent: waits for the child's report; never returns. */
static void supervise(pid_t child, int report, int errors)
{
	char stderr_text[512];
	size_t stderr_length = 0;
	struct pollfd fds[2] = { { report, POLLIN, 0 }, { errors, POLLIN, 0 } };
	for (;;) {
		int ready = poll(fds, 2, -1);
		if (ready < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (fds[1].fd >= 0 && (fds[1].revents & (POLLIN | POLLHUP | POLLERR))) {
			char chunk[256];
			ssize_t n = read(errors, chunk, sizeof chunk);
			if (n > 0) {
				size_t room = sizeof stderr_text - stderr_length;
				size_t take = (size_t)n < room ? (size_t)n : room;
				memcpy(stderr_text + stderr_length, chunk, take);
				stderr_length += take;
			} else if (n == 0 || errno != EINTR) {
				fds[1].fd = -1; /* the child closed its stderr */
			}
		}
		if (fds[0].revents & (POLLIN | POLLHUP | POLLERR)) {
			unsigned char code;
			ssize_t n = read(report, &code, 1);
			if (n == 1) {
				/* Reaped when it ends at once, as it does unless a thread is stuck in the
				 * kernel, so that this process's resource usage (time, maximum RSS) includes
				 * the plugin's; waited for 200 ms at most. */
				int status;
				for (int waited = 0; waited < 200 && waitpid(child, &status, WNOHANG) == 0; waited++)
					usleep(1000);
				_exit(code <= 3 ? code : 3);
			}
			if (n == 0 || errno != EINTR)
				break; /* the child ended without reporting */
		}
	}

	int status = 0;
	while (waitpid(child, &status, 0) < 0 && errno == EINTR)
		;
	if (WIFEXITED(status) && WEXITSTATUS(status) <= 3 && stderr_length == 0)
		_exit(WEXITSTATUS(status));
	char why[200], line[600];
	first_line(stderr_text, stderr_length, why, sizeof why);
	int length;
	if (WIFSIGNALED(status))
		length = snprintf(line, sizeof line, "EPHEMERAL PORTS UNKNOWN - the check was ended by signal %d%s%s\n",
				  WTERMSIG(status), why[0] ? ": " : "", why);
	else
		length = snprintf(line, sizeof line,
				  "EPHEMERAL PORTS UNKNOWN - the check ended with exit code %d before answering%s%s "
				  "(the process limits may be below what the runtime needs: see the README, \"Limits\")\n",
				  WEXITSTATUS(status), why[0] ? ": " : "", why);
	if (length > 0)
		write_all(1, line, (size_t)length < sizeof line ? (size_t)length : sizeof line - 1);
	_exit(3);
}

__attribute__((constructor)) static void cep_process_start(void)
{
	fill_standard_descriptors();
	mallopt(M_ARENA_MAX, 1);
	clean_environment();

	int report[2], errors[2];
	if (pipe2(report, O_CLOEXEC) != 0)
		return;
	if (pipe2(errors, O_CLOEXEC) != 0) {
		close(report[0]);
		close(report[1]);
		return;
	}
	pid_t parent = getpid();
	pid_t child = fork();
	if (child < 0) {
		/* No process to spare (RLIMIT_NPROC): run unsupervised. */
		close(report[0]);
		close(report[1]);
		close(errors[0]);
		close(errors[1]);
		return;
	}
	if (child == 0) {
		/* The plugin: it ends with the parent (the monitoring core's timeout killed it). */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(3);
		close(report[0]);
		close(errors[0]);
		dup2(errors[1], 2);
		close(errors[1]);
		char number[16];
		snprintf(number, sizeof number, "%d", report[1]);
		setenv(REPORT_VARIABLE, number, 1);
		return;
	}
	close(report[1]);
	close(errors[1]);
	supervise(child, report[0], errors[0]);
}
