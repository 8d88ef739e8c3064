// SPDX-License-Identifier: MIT
/*
 * cep_bpf_dump: prints what the BPF socket reader sees, for the kernel-fact tests and the
 * benchmark (not shipped).
 *
 *   cep_bpf_dump [--no-pin] [--no-reuse] [--no-cache] [--json|--count|--quiet] [--time] [--netns PATH]
 *                [--opens N] [tcp|udp|all]
 *   cep_bpf_dump --unpin-all
 *
 * --no-cache  neither use nor write the load cache (/run/check_ephemeral_ports)
 * --opens  open and close the reader N times first (a leak test: run it under valgrind, or
 *          compare /proc/self/fd and the kernel's links before and after), then read as usual
 * --json   one JSON object per record (a line each); default: one text line per record
 * --count  only the number of records per protocol
 * --quiet  read everything, print nothing (timing)
 * --time   the open, iterator and read times in ms on stderr
 * --netns  setns() into that network namespace after opening, before the iterators
 * Exit 0; 2 with the reason on stderr when the reader cannot open.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cep_bpf.h"

static double now_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static const char *const tcp_states[] = { "?", "ESTABLISHED", "SYN_SENT", "SYN_RECV", "FIN_WAIT1", "FIN_WAIT2",
	"TIME_WAIT", "CLOSE", "CLOSE_WAIT", "LAST_ACK", "LISTEN", "CLOSING", "NEW_SYN_RECV" };

static void addr(const struct cep_record *r, const unsigned char *a, char *out, size_t len)
{
	inet_ntop(r->family == 10 ? AF_INET6 : AF_INET, a, out, (socklen_t)len);
}

static void print(const struct cep_record *r, int json)
{
	char l[64], d[64];
	addr(r, r->laddr, l, sizeof l);
	addr(r, r->raddr, d, sizeof d);
	const char *st = r->protocol == 6 && r->state < 13 ? tcp_states[r->state] : r->state == 1 ? "ESTABLISHED" : "UNCONN";
	const char *kind = r->fastreuse == CEP_RECORD_NO_BUCKET ? "none"
		: (r->fastreuse >= 0 || r->fastreuseport >= 0) ? "bind" : "connect";
	if (json)
		printf("{\"proto\":\"%s\",\"family\":%d,\"state\":%d,\"state_name\":\"%s\",\"laddr\":\"%s\",\"lport\":%u,"
		       "\"raddr\":\"%s\",\"rport\":%u,\"bucket\":\"%s\",\"fastreuse\":%d,\"fastreuseport\":%d,"
		       "\"flags\":%u,\"bind_address_no_port\":%s,\"reuseaddr\":%s,\"reuseport\":%s,\"v6only\":%s,"
		       "\"connect_bind\":%s,\"tw_timestamps\":%s,\"tw_age_ms\":%u,\"tw_age_exact\":%s,\"tw_ts_recent_stamp\":%d,"
		       "\"range_lo\":%u,\"range_hi\":%u,\"userlocks\":%u,\"inode\":%u,\"uid\":%u,\"bound_dev_if\":%u}\n",
		       r->protocol == 6 ? "tcp" : "udp", r->family, r->state, st, l, r->lport, d, r->rport, kind,
		       r->fastreuse, r->fastreuseport, r->flags,
		       r->flags & CEP_FLAG_BIND_ADDRESS_NO_PORT ? "true" : "false",
		       r->flags & CEP_FLAG_REUSEADDR ? "true" : "false", r->flags & CEP_FLAG_REUSEPORT ? "true" : "false",
		       r->flags & CEP_FLAG_V6ONLY ? "true" : "false",
		       !(r->flags & CEP_FLAG_CONNECT_BIND_KNOWN) ? "null" : r->flags & CEP_FLAG_CONNECT_BIND ? "true" : "false",
		       r->flags & CEP_FLAG_TW_TIMESTAMPS ? "true" : "false", r->tw_age_ms,
		       r->flags & CEP_FLAG_TW_AGE_EXACT ? "true" : "false", r->tw_ts_recent_stamp,
		       r->range_lo, r->range_hi, r->userlocks, r->inode, r->uid, r->bound_dev_if);
	else
		printf("%s %-11s %s:%u -> %s:%u bucket=%s(%d/%d) flags=0x%02x range=%u-%u tw_age_ms=%u ts_stamp=%d ino=%u uid=%u\n",
		       r->protocol == 6 ? "tcp" : "udp", st, l, r->lport, d, r->rport, kind, r->fastreuse, r->fastreuseport,
		       r->flags, r->range_lo, r->range_hi, r->tw_age_ms, r->tw_ts_recent_stamp, r->inode, r->uid);
}

int main(int argc, char **argv)
{
	int flags = 0, json = 0, count = 0, quiet = 0, timing = 0, opens = 0, which[2] = { 1, 1 };
	const char *netns = NULL;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--no-pin"))
			flags |= CEP_OPEN_NO_PIN;
		else if (!strcmp(argv[i], "--no-reuse"))
			flags |= CEP_OPEN_NO_REUSE;
		else if (!strcmp(argv[i], "--no-cache"))
			flags |= CEP_OPEN_NO_CACHE;
		else if (!strcmp(argv[i], "--json"))
			json = 1;
		else if (!strcmp(argv[i], "--count"))
			count = 1;
		else if (!strcmp(argv[i], "--quiet"))
			quiet = 1;
		else if (!strcmp(argv[i], "--time"))
			timing = 1;
		else if (!strcmp(argv[i], "--netns") && i + 1 < argc)
			netns = argv[++i];
		else if (!strcmp(argv[i], "--opens") && i + 1 < argc)
			opens = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--unpin-all"))
			return cep_bpf_unpin_all(NULL) == 0 ? 0 : 1;
		else if (!strcmp(argv[i], "tcp"))
			which[1] = 0;
		else if (!strcmp(argv[i], "udp"))
			which[0] = 0;
		else if (strcmp(argv[i], "all")) {
			fprintf(stderr, "usage: %s [--no-pin] [--no-reuse] [--no-cache] [--json|--count|--quiet] [--time] [--netns PATH] [--opens N] [tcp|udp|all]\n", argv[0]);
			return 64;
		}
	}
	char why[512];
	int err;
	for (int i = 0; i < opens; i++) {
		struct cep_reader *r = cep_reader_open(flags, NULL, &err, why, sizeof why);
		if (!r) {
			fprintf(stderr, "cep_reader_open: %d %s\n", -err, why);
			return 2;
		}
		/* an iterator made and closed too, so that the loop exercises what a run does */
		int fd = cep_reader_iter(r, CEP_ITER_UDP);
		if (fd >= 0)
			close(fd);
		cep_reader_close(r);
	}
	double t0 = now_ms();
	struct cep_reader *h = cep_reader_open(flags, NULL, &err, why, sizeof why);
	double t1 = now_ms();
	if (!h) {
		/* "-errno reason", as tests/integration/bpf-native.sh expects */
		fprintf(stderr, "cep_reader_open: %d %s\n", -err, why);
		return 2;
	}
	if (timing)
		fprintf(stderr, "open %.2f ms (mode %d: %s)\n", t1 - t0, cep_reader_mode(h), why);
	if (netns) {
		int fd = open(netns, O_RDONLY | O_CLOEXEC);
		if (fd < 0 || setns(fd, CLONE_NEWNET) != 0) {
			fprintf(stderr, "setns %s: %s\n", netns, strerror(errno));
			if (fd >= 0)
				close(fd);
			cep_reader_close(h);
			return 2;
		}
		close(fd);
	}
	static struct cep_record buf[4096];
	for (int w = 0; w < 2; w++) {
		if (!which[w])
			continue;
		double a = now_ms();
		int fd = cep_reader_iter(h, w == 0 ? CEP_ITER_TCP : CEP_ITER_UDP);
		if (fd < 0) {
			fprintf(stderr, "cep_reader_iter(%s): %s\n", w ? "udp" : "tcp", strerror(-fd));
			cep_reader_close(h);
			return 2;
		}
		double b = now_ms();
		long n, total = 0;
		while ((n = cep_bpf_read(fd, buf, sizeof buf)) > 0) {
			size_t k = (size_t)n / sizeof buf[0];
			if (!count && !quiet)
				for (size_t i = 0; i < k; i++)
					print(&buf[i], json);
			total += (long)k;
		}
		close(fd);
		if (n < 0) {
			fprintf(stderr, "read(%s): %s\n", w ? "udp" : "tcp", strerror((int)-n));
			cep_reader_close(h);
			return 2;
		}
		if (count)
			printf("%s %ld\n", w ? "udp" : "tcp", total);
		if (timing)
			fprintf(stderr, "%s: iter %.2f ms, read %.2f ms, %ld records\n", w ? "udp" : "tcp", b - a, now_ms() - b, total);
	}
	cep_reader_close(h);
	return 0;
}
