/* SPDX-License-Identifier: (MIT OR GPL-2.0-only) */
/*
 * The record that ports.bpf.c writes for each socket and that the loader's callers read() from an
 * iterator fd: shared by the BPF program and user space, so it uses only fixed-size types and no
 * implicit padding (CEP_RECORD_SIZE, 68 bytes, little endian as the host). Fields are what the port model needs
 * (see src/native/README.md); all ports are in host byte order.
 */
#ifndef CEP_RECORD_H
#define CEP_RECORD_H

#include "cep_abi.h" /* the version, flag bits and offsets: CEP_RECORD_*, CEP_FLAG_*, CEP_OFF_* */

struct cep_record {
	unsigned char family;        /* 0: AF_INET (2) or AF_INET6 (10) */
	unsigned char state;         /* 1: TCP state as /proc and sock_diag show it (TIME_WAIT: tw_substate,
	                                   so an orphaned FIN_WAIT2 reads 5; request socks 3, SYN_RECV);
	                                   UDP: 1 connected, 7 not */
	unsigned char protocol;      /* 2: IPPROTO_TCP (6) or IPPROTO_UDP (17) */
	unsigned char flags;         /* 3: CEP_FLAG_* */
	signed char fastreuse;       /* 4: bind bucket: -1/-1 made by connect(), >= 0 made by bind()/listen(); */
	signed char fastreuseport;   /* 5:   request socks show their listener's; UDP CEP_RECORD_NO_BUCKET */
	unsigned short lport;        /* 6 */
	unsigned short rport;        /* 8: 0 for listeners and unconnected UDP */
	unsigned short range_lo;     /* 10: per-socket IP_LOCAL_PORT_RANGE as set, 0/0 = none */
	unsigned short range_hi;     /* 12 */
	unsigned char userlocks;     /* 14: sk_userlocks (SOCK_BINDADDR_LOCK 4, SOCK_BINDPORT_LOCK 8, SOCK_CONNECT_BIND 16) */
	unsigned char reserved;      /* 15 */
	unsigned int tw_age_ms;      /* 16: TIME_WAIT: age, see CEP_FLAG_TW_AGE_EXACT */
	unsigned int inode;          /* 20: socket inode (0 for TIME_WAIT and request socks) */
	unsigned int uid;            /* 24 */
	unsigned char laddr[16];     /* 28: AF_INET: the 4 bytes first, rest zero; AF_INET6 as is */
	unsigned char raddr[16];     /* 44 */
	int tw_ts_recent_stamp;      /* 60: TIME_WAIT: raw tw_ts_recent_stamp (seconds) */
	unsigned int bound_dev_if;   /* 64: SO_BINDTODEVICE: sk_bound_dev_if (a TIME_WAIT's and request sock's too), 0 = none */
};

/* The record is an ABI read by offset (P/Invoke, the C# CepAbi.Off constants): each field where
 * cep_abi.h says, for every compiler that includes this (the BPF target and the loader's). */
#define CEP_RECORD_AT_(f, F) _Static_assert(__builtin_offsetof(struct cep_record, f) == CEP_OFF_##F, "cep_record." #f " is not at CEP_OFF_" #F)
CEP_RECORD_AT_(family, FAMILY); CEP_RECORD_AT_(state, STATE); CEP_RECORD_AT_(protocol, PROTOCOL);
CEP_RECORD_AT_(flags, FLAGS); CEP_RECORD_AT_(fastreuse, FASTREUSE); CEP_RECORD_AT_(fastreuseport, FASTREUSEPORT);
CEP_RECORD_AT_(lport, LPORT); CEP_RECORD_AT_(rport, RPORT); CEP_RECORD_AT_(range_lo, RANGE_LO);
CEP_RECORD_AT_(range_hi, RANGE_HI); CEP_RECORD_AT_(userlocks, USERLOCKS); CEP_RECORD_AT_(reserved, RESERVED);
CEP_RECORD_AT_(tw_age_ms, TW_AGE_MS); CEP_RECORD_AT_(inode, INODE); CEP_RECORD_AT_(uid, UID);
CEP_RECORD_AT_(laddr, LADDR); CEP_RECORD_AT_(raddr, RADDR); CEP_RECORD_AT_(tw_ts_recent_stamp, TW_TS_RECENT_STAMP);
CEP_RECORD_AT_(bound_dev_if, BOUND_DEV_IF);
_Static_assert(sizeof(struct cep_record) == CEP_RECORD_SIZE, "struct cep_record is not CEP_RECORD_SIZE bytes");
#undef CEP_RECORD_AT_

#endif
