/* SPDX-License-Identifier: (MIT OR GPL-2.0-only) */
/*
 * Every number that crosses between the native BPF reader and the C# plugin, defined once: the
 * record's size, version, field offsets and flag bits (what ports.bpf.c writes, cep_record.h), and
 * the reader's iterator kinds, open flags and modes (cep_bpf.h). The C# side never writes them
 * again: src/native/abi_cs.sh makes src/EphemeralPorts.Core/Acquisition/Bpf/CepAbi.g.cs from this
 * file, src/native/build.sh fails when that file is stale, and a unit test (BpfAbiTests) holds
 * the C# constants to this header.
 *
 * Rules for abi_cs.sh: one "#define CEP_<GROUP>_<NAME> <integer> [comment]" a line, the integer
 * decimal or hex, a negative one in parentheses; GROUP is one of RECORD, OFF, FLAG, USERLOCK, ITER,
 * OPEN, MODE (a C# class each). A comment on the same line becomes the constant's C# summary.
 */
#ifndef CEP_ABI_H
#define CEP_ABI_H

/* struct cep_record (cep_record.h): 68 bytes, host byte order */
#define CEP_RECORD_SIZE 68 /* sizeof(struct cep_record) */
#define CEP_RECORD_VERSION 2 /* changes with any change of the record's layout or meaning */
#define CEP_RECORD_NO_BUCKET (-128) /* fastreuse/fastreuseport when the socket has no bind bucket to read (UDP) */

/* where each field of struct cep_record is (asserted against the struct by cep_bpf.c and build.sh) */
#define CEP_OFF_FAMILY 0
#define CEP_OFF_STATE 1
#define CEP_OFF_PROTOCOL 2
#define CEP_OFF_FLAGS 3
#define CEP_OFF_FASTREUSE 4
#define CEP_OFF_FASTREUSEPORT 5
#define CEP_OFF_LPORT 6
#define CEP_OFF_RPORT 8
#define CEP_OFF_RANGE_LO 10
#define CEP_OFF_RANGE_HI 12
#define CEP_OFF_USERLOCKS 14
#define CEP_OFF_RESERVED 15
#define CEP_OFF_TW_AGE_MS 16
#define CEP_OFF_INODE 20
#define CEP_OFF_UID 24
#define CEP_OFF_LADDR 28
#define CEP_OFF_RADDR 44
#define CEP_OFF_TW_TS_RECENT_STAMP 60
#define CEP_OFF_BOUND_DEV_IF 64

/* cep_record.flags */
#define CEP_FLAG_BIND_ADDRESS_NO_PORT 0x01 /* IP_BIND_ADDRESS_NO_PORT set (full sockets only) */
#define CEP_FLAG_REUSEADDR 0x02 /* SO_REUSEADDR (sk_reuse != 0) */
#define CEP_FLAG_REUSEPORT 0x04 /* SO_REUSEPORT */
#define CEP_FLAG_V6ONLY 0x08 /* IPV6_V6ONLY (AF_INET6 only) */
#define CEP_FLAG_CONNECT_BIND 0x10 /* the kernel marks the port as chosen by connect() (6.18+: SOCK_CONNECT_BIND / tw_connect_bind) */
#define CEP_FLAG_CONNECT_BIND_KNOWN 0x20 /* the kernel has that mark at all */
#define CEP_FLAG_TW_TIMESTAMPS 0x40 /* TIME_WAIT: the connection negotiated timestamps (tw_ts_recent_stamp != 0) */
#define CEP_FLAG_TW_AGE_EXACT 0x80 /* TIME_WAIT: tw_age_ms counts from tw_entry_stamp (else whole seconds from tw_ts_recent_stamp) */

/* cep_record.userlocks: the kernel's sk_userlocks bits, copied as they are (include/net/sock.h) */
#define CEP_USERLOCK_BINDADDR 0x04 /* SOCK_BINDADDR_LOCK: the program named the address */
#define CEP_USERLOCK_BINDPORT 0x08 /* SOCK_BINDPORT_LOCK: the program named the port */
#define CEP_USERLOCK_CONNECT_BIND 0x10 /* SOCK_CONNECT_BIND (6.18+) */

/* cep_reader_iter: which */
#define CEP_ITER_TCP 0 /* iter/tcp: TCP sockets, TIME_WAIT and request socks */
#define CEP_ITER_UDP 1 /* iter/udp */

/* cep_reader_open: flags */
#define CEP_OPEN_NO_PIN 0x1 /* neither use nor create pinned iterators: load for this run only */
#define CEP_OPEN_NO_REUSE 0x2 /* load (and pin, unless NO_PIN) even when a pinned copy exists */
#define CEP_OPEN_NO_CACHE 0x4 /* neither read nor write the load cache */

/* cep_reader_mode: how the reader reads */
#define CEP_MODE_PINNED 1 /* opened the iterators pinned by an earlier run (no bpf() call) */
#define CEP_MODE_LOADED_PINNED 2 /* loaded the program and pinned it for later runs */
#define CEP_MODE_LOADED 3 /* loaded the program for this run only (bpffs absent or pin refused) */
#define CEP_MODE_CACHED 4 /* as LOADED, but from the load cache written by an earlier root run: no BTF parsed */

#endif
