// SPDX-License-Identifier: (MIT OR GPL-2.0-only)
/*
 * Socket iterators for check_ephemeral_ports: one fixed-size record (cep_record.h) per TCP or UDP
 * socket whose local port lies in its network namespace's ip_local_port_range, carrying what
 * neither /proc nor sock_diag shows: who made the port's bind bucket (bind()/listen() or
 * connect()), a TIME_WAIT's negotiated timestamps and age, the per-socket IP_LOCAL_PORT_RANGE.
 *
 * No maps and no input: the range is read from the socket's own namespace, so one loaded (and
 * pinned) program serves every namespace and every concurrent reader, and a socket's program can
 * be re-run safely when its record does not fit the seq buffer.
 *
 * CO-RE: built against the build host's vmlinux.h, relocated by libbpf at load time; fields that
 * moved between kernels are read through flavours (___v61) and existence checks.
 *
 * Verifier cost (what a run that loads, from the load cache or through libbpf, waits for): a
 * pointer loaded through a *trusted* pointer (the iterator's ctx->sk_common, ctx->udp_sk) has its
 * field looked up by name in the kernel's BTF (btf_nested_type_is_trusted(), 6.5+), ~1 ms of
 * verification per such load on 6.18, more than all the rest. So TCP reads every field through the
 * pointer its bpf_skc_to_*() cast returns (not trusted: cheap to verify; the cast now comes before
 * the range check, ~2-4% more CPU at 50k connections), and UDP, which has no such cast for IPv4,
 * probe-reads its two pointers (the namespace, the socket; UDP sockets are few). Measured (6.18,
 * verification time): TCP 1.8 -> 0.9 ms, UDP 2.3 -> 0.4 ms.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include "cep_record.h"

char LICENSE[] SEC("license") = "Dual MIT/GPL";

#define AF_INET 2
#define AF_INET6 10
#define TCP_SYN_RECV 3
#define TCP_TIME_WAIT 6
#define TCP_NEW_SYN_RECV 12
#define SOCK_CONNECT_BIND 16

/* Older kernels (6.1) kept the namespace's range as two ints under a seqlock. */
struct local_ports___v61 {
	int range[2];
} __attribute__((preserve_access_index));

/* Older kernels (6.1) kept IP_BIND_ADDRESS_NO_PORT as a bit field of inet_sock. */
struct inet_sock___v61 {
	__u8 bind_address_no_port : 1;
} __attribute__((preserve_access_index));

/* IP_LOCAL_PORT_RANGE as a struct of two u16 (kernels between 6.3 and the u32 form). */
struct inet_sock___v63 {
	struct {
		__u16 lo;
		__u16 hi;
	} local_port_range;
} __attribute__((preserve_access_index));

/* 6.18 marks connect()-chosen ports; older kernels (6.1) do not have the flag. */
struct inet_timewait_sock___v618 {
	unsigned int tw_connect_bind : 1;
} __attribute__((preserve_access_index));

/* Older kernels (6.1) gave a TIME_WAIT no entry stamp (reuse waited for tw_ts_recent_stamp + 1 s). */
struct inet_timewait_sock___v613 {
	__u32 tw_entry_stamp;
} __attribute__((preserve_access_index));

/* A bit field of p: read directly where p is an untrusted BTF pointer (what TCP's bpf_skc_to_*()
 * casts return), probe-read where p is trusted (UDP: see the top). A probe read is a helper call
 * per field and socket: reading TCP's four directly took the TCP walk at 50k connections from 68
 * to 61 ms (cep_bpf_dump --time, medians of 11). */
#define BITS(p, f, probed) ((probed) ? BPF_CORE_READ_BITFIELD_PROBED(p, f) : BPF_CORE_READ_BITFIELD(p, f))

/* probed: skc is trusted (see the top): the namespace pointer and its range are probe-read */
static __always_inline int netns_range(struct sock_common *skc, __u32 *lo, __u32 *hi, const int probed)
{
	struct net *net = probed ? BPF_CORE_READ(skc, skc_net.net) : skc->skc_net.net;
	/* Asked of the 6.1 flavour: a field-size relocation on the u32 form fails to resolve (and
	 * the load with it) where the kernel's range is the int[2] (Debian 12's 6.1, seen on arm64),
	 * while a field-exists relocation only says no. */
	struct local_ports___v61 *lp = (void *)&net->ipv4.ip_local_ports;
	if (bpf_core_field_exists(lp->range)) {
		*lo = probed ? BPF_CORE_READ(lp, range[0]) : lp->range[0];
		*hi = probed ? BPF_CORE_READ(lp, range[1]) : lp->range[1];
	} else {
		/* newer kernels (6.18): low in the low 16 bits, high in the high 16 bits, one word */
		__u32 r = probed ? BPF_CORE_READ(net, ipv4.ip_local_ports.range) : net->ipv4.ip_local_ports.range;
		*lo = r & 0xffff;
		*hi = r >> 16;
	}
	return 0;
}

/* Fills the fields every socket has (in struct sock_common); returns 0 when the port is out of range. */
static __always_inline int common(struct sock_common *skc, struct cep_record *r, const int probed)
{
	__u32 lo, hi;
	__u16 port = skc->skc_num;

	netns_range(skc, &lo, &hi, probed);
	if (port < lo || port > hi)
		return 0;
	r->family = skc->skc_family;
	r->state = skc->skc_state;
	r->lport = port;
	r->rport = bpf_ntohs(skc->skc_dport);
	/* The device a socket is bound to: __inet_check_established() matches a connection only
	 * against sockets bound to the same device or to none, and tcp_twsk_unique() takes a
	 * TIME_WAIT bound to lo for loopback. */
	r->bound_dev_if = skc->skc_bound_dev_if;
	if (r->family == AF_INET6) {
		__builtin_memcpy(r->laddr, &skc->skc_v6_rcv_saddr, 16);
		__builtin_memcpy(r->raddr, &skc->skc_v6_daddr, 16);
		if (BITS(skc, skc_ipv6only, probed))
			r->flags |= CEP_FLAG_V6ONLY;
	} else {
		__u32 *l = (__u32 *)r->laddr, *d = (__u32 *)r->raddr;
		*l = skc->skc_rcv_saddr;
		*d = skc->skc_daddr;
	}
	if (BITS(skc, skc_reuse, probed))
		r->flags |= CEP_FLAG_REUSEADDR;
	if (BITS(skc, skc_reuseport, probed))
		r->flags |= CEP_FLAG_REUSEPORT;
	return 1;
}

static __always_inline void bucket(struct inet_bind_bucket *tb, struct cep_record *r)
{
	if (tb) {
		r->fastreuse = tb->fastreuse;
		r->fastreuseport = tb->fastreuseport;
	} else {
		r->fastreuse = CEP_RECORD_NO_BUCKET;
		r->fastreuseport = CEP_RECORD_NO_BUCKET;
	}
}

/* What a full socket (TCP or UDP) adds: per-socket range, IP_BIND_ADDRESS_NO_PORT, locks, inode.
 * probed: sk is trusted, its socket pointer is probe-read (see the top). */
static __always_inline void full(struct sock *sk, struct inet_sock *inet, struct cep_record *r, const int probed)
{
	struct inet_sock___v63 *i63 = (void *)inet;
	if (bpf_core_field_exists(inet->local_port_range)) {
		__u32 pr = inet->local_port_range;
		r->range_lo = pr & 0xffff;
		r->range_hi = pr >> 16;
	} else if (bpf_core_field_exists(i63->local_port_range)) {
		r->range_lo = i63->local_port_range.lo;
		r->range_hi = i63->local_port_range.hi;
	}
	if (bpf_core_field_exists(inet->inet_flags)) {
		unsigned long f = inet->inet_flags;
		/* INET_FLAGS_BIND_ADDRESS_NO_PORT: an anonymous enum (no CO-RE relocation); 18 on 6.18,
		 * and the enum only grows at its end */
		if ((f >> 18) & 1)
			r->flags |= CEP_FLAG_BIND_ADDRESS_NO_PORT;
	} else {
		struct inet_sock___v61 *old = (void *)inet;
		if (BPF_CORE_READ_BITFIELD_PROBED(old, bind_address_no_port))
			r->flags |= CEP_FLAG_BIND_ADDRESS_NO_PORT;
	}
	/* a plain u8 on 6.18, a 4-bit field on 6.1: the bit-field reader takes both */
	r->userlocks = BITS(sk, sk_userlocks, probed);
	if (bpf_core_field_exists(struct inet_timewait_sock___v618, tw_connect_bind)) {
		r->flags |= CEP_FLAG_CONNECT_BIND_KNOWN;
		if (r->userlocks & SOCK_CONNECT_BIND)
			r->flags |= CEP_FLAG_CONNECT_BIND;
	}
	struct socket *so = probed ? BPF_CORE_READ(sk, sk_socket) : sk->sk_socket;
	if (so) {
		struct socket_alloc *sa = container_of(so, struct socket_alloc, socket);
		r->inode = BPF_CORE_READ(sa, vfs_inode.i_ino);
	}
}

SEC("iter/tcp")
int cep_tcp(struct bpf_iter__tcp *ctx)
{
	struct sock_common *skc = ctx->sk_common;
	struct cep_record r = {};

	if (!skc)
		return 0;
	/* every field through the helpers' casts, not through skc (see the top) */
	__u8 state = skc->skc_state;
	r.protocol = IPPROTO_TCP;
	r.uid = ctx->uid;

	if (state == TCP_TIME_WAIT) {
		struct tcp_timewait_sock *tw = bpf_skc_to_tcp_timewait_sock(skc);
		if (!tw || !common(&tw->tw_sk.__tw_common, &r, 0))
			return 0;
		struct inet_timewait_sock *itw = &tw->tw_sk;
		r.state = itw->tw_substate;
		bucket(itw->tw_tb, &r);
		r.tw_ts_recent_stamp = tw->tw_ts_recent_stamp;
		if (r.tw_ts_recent_stamp)
			r.flags |= CEP_FLAG_TW_TIMESTAMPS;
		if (bpf_core_field_exists(struct inet_timewait_sock___v618, tw_connect_bind)) {
			struct inet_timewait_sock___v618 *t18 = (void *)itw;
			r.flags |= CEP_FLAG_CONNECT_BIND_KNOWN;
			if (BPF_CORE_READ_BITFIELD_PROBED(t18, tw_connect_bind))
				r.flags |= CEP_FLAG_CONNECT_BIND;
		}
		if (bpf_core_field_exists(struct inet_timewait_sock___v613, tw_entry_stamp)) {
			/* tcp_time_wait() stamps tcp_clock_ms(): CLOCK_MONOTONIC in ms, as a u32 */
			struct inet_timewait_sock___v613 *t13 = (void *)itw;
			__u32 now = bpf_ktime_get_ns() / 1000000;
			r.tw_age_ms = now - t13->tw_entry_stamp;
			r.flags |= CEP_FLAG_TW_AGE_EXACT;
		} else if (r.tw_ts_recent_stamp) {
			/* tcp_twsk_unique() compared ktime_get_seconds() with tw_ts_recent_stamp */
			__u32 now_s = bpf_ktime_get_ns() / 1000000000;
			r.tw_age_ms = (now_s - (__u32)r.tw_ts_recent_stamp) * 1000;
		}
	} else if (state == TCP_NEW_SYN_RECV) {
		struct tcp_request_sock *treq = bpf_skc_to_tcp_request_sock(skc);
		if (!treq || !common(&treq->req.req.__req_common, &r, 0))
			return 0;
		r.state = TCP_SYN_RECV; /* as /proc/net/tcp and sock_diag show request socks */
		/* the listener's bucket; skc_listener is a plain pointer to the verifier: probe reads */
		struct inet_connection_sock *licsk = (void *)treq->req.req.__req_common.skc_listener;
		struct inet_bind_bucket *tb = licsk ? BPF_CORE_READ(licsk, icsk_bind_hash) : NULL;
		r.fastreuse = tb ? BPF_CORE_READ(tb, fastreuse) : CEP_RECORD_NO_BUCKET;
		r.fastreuseport = tb ? BPF_CORE_READ(tb, fastreuseport) : CEP_RECORD_NO_BUCKET;
	} else {
		struct tcp_sock *tp = bpf_skc_to_tcp_sock(skc);
		if (!tp || !common(&tp->inet_conn.icsk_inet.sk.__sk_common, &r, 0))
			return 0;
		struct inet_connection_sock *icsk = &tp->inet_conn;
		bucket(icsk->icsk_bind_hash, &r);
		full(&icsk->icsk_inet.sk, &icsk->icsk_inet, &r, 0);
	}
	bpf_seq_write(ctx->meta->seq, &r, sizeof(r));
	return 0;
}

SEC("iter/udp")
int cep_udp(struct bpf_iter__udp *ctx)
{
	struct udp_sock *up = ctx->udp_sk;
	struct cep_record r = {};

	if (!up)
		return 0;
	struct inet_sock *inet = &up->inet;
	struct sock_common *skc = &inet->sk.__sk_common;
	if (!common(skc, &r, 1))
		return 0;
	r.protocol = IPPROTO_UDP;
	r.uid = ctx->uid;
	r.fastreuse = CEP_RECORD_NO_BUCKET;
	r.fastreuseport = CEP_RECORD_NO_BUCKET;
	full(&inet->sk, inet, &r, 1);
	bpf_seq_write(ctx->meta->seq, &r, sizeof(r));
	return 0;
}
