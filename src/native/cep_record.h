/* SPDX-License-Identifier: (MIT OR GPL-2.0-only) */
/*
 * The record that ports.bpf.c writes for each socket and that the loader's callers read() from an
 * iterator fd: shared by the BPF program and user space, so it uses only fixed-size types and no
 * implicit padding (68 bytes, little endian as the host). Fields are what the port model needs
 * (see src/native/README.md); all ports are in host byte order.
 */
#ifndef CEP_RECORD_H
#define CEP_RECORD_H

#define CEP_RECORD_VERSION 2

/* flags */
#define CEP_F_BIND_ADDRESS_NO_PORT 0x01 /* IP_BIND_ADDRESS_NO_PORT set (full sockets only) */
#define CEP_F_REUSEADDR            0x02 /* SO_REUSEADDR (sk_reuse != 0) */
#define CEP_F_REUSEPORT            0x04 /* SO_REUSEPORT */
#define CEP_F_V6ONLY               0x08 /* IPV6_V6ONLY (AF_INET6 only) */
#define CEP_F_CONNECT_BIND         0x10 /* kernel marks the port as chosen by connect() (6.18+: SOCK_CONNECT_BIND / tw_connect_bind) */
#define CEP_F_CONNECT_BIND_KNOWN   0x20 /* the kernel has that mark at all */
#define CEP_F_TW_TIMESTAMPS        0x40 /* TIME_WAIT: the connection negotiated timestamps (tw_ts_recent_stamp != 0) */
#define CEP_F_TW_AGE_EXACT         0x80 /* TIME_WAIT: tw_age_ms counts from tw_entry_stamp (else whole seconds from tw_ts_recent_stamp) */

/* fastreuse/fastreuseport when the socket has no bind bucket to read (UDP) */
#define CEP_NO_BUCKET (-128)

struct cep_record {
	unsigned char family;        /* 0: AF_INET (2) or AF_INET6 (10) */
	unsigned char state;         /* 1: TCP state as /proc and sock_diag show it (TIME_WAIT: tw_substate,
	                                   so an orphaned FIN_WAIT2 reads 5; request socks 3, SYN_RECV);
	                                   UDP: 1 connected, 7 not */
	unsigned char protocol;      /* 2: IPPROTO_TCP (6) or IPPROTO_UDP (17) */
	unsigned char flags;         /* 3: CEP_F_* */
	signed char fastreuse;       /* 4: bind bucket: -1/-1 made by connect(), >= 0 made by bind()/listen(); */
	signed char fastreuseport;   /* 5:   request socks show their listener's; UDP CEP_NO_BUCKET */
	unsigned short lport;        /* 6 */
	unsigned short rport;        /* 8: 0 for listeners and unconnected UDP */
	unsigned short range_lo;     /* 10: per-socket IP_LOCAL_PORT_RANGE as set, 0/0 = none */
	unsigned short range_hi;     /* 12 */
	unsigned char userlocks;     /* 14: sk_userlocks (SOCK_BINDADDR_LOCK 4, SOCK_BINDPORT_LOCK 8, SOCK_CONNECT_BIND 16) */
	unsigned char reserved;      /* 15 */
	unsigned int tw_age_ms;      /* 16: TIME_WAIT: age, see CEP_F_TW_AGE_EXACT */
	unsigned int inode;          /* 20: socket inode (0 for TIME_WAIT and request socks) */
	unsigned int uid;            /* 24 */
	unsigned char laddr[16];     /* 28: AF_INET: the 4 bytes first, rest zero; AF_INET6 as is */
	unsigned char raddr[16];     /* 44 */
	int tw_ts_recent_stamp;      /* 60: TIME_WAIT: raw tw_ts_recent_stamp (seconds) */
	unsigned int bound_dev_if;   /* 64: SO_BINDTODEVICE: sk_bound_dev_if (a TIME_WAIT's and request sock's too), 0 = none */
};

#endif
