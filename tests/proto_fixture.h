/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * What the protocol tests share (tests/test_codec.c, test_policy.c,
 * test_framing.c, test_daemon.c): one real ioasidd per test
 * (tests/daemon_fixture.c), libioasid clients of it, and raw messages
 * built byte by byte, sent with descriptors and read back with the codec.
 * Failures are criterion assertions.
 */
#ifndef IOASID_TESTS_PROTO_FIXTURE_H
#define IOASID_TESTS_PROTO_FIXTURE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <netlink/msg.h>

#include "daemon_fixture.h"
#include "helpers.h"
#include "proto/codec.h"

#define MiB	(1ULL << 20)
#define GiB	(1ULL << 30)
#define RW	(IOASID_MAP_READ | IOASID_MAP_WRITE)
#define FIXED	IOASID_MAP_FIXED_IOVA
#define NIC	"0000:00:01.0"		/* built-in sim topology */

/*
 * Waits for the daemon (reaping, reloading, exiting) poll every 2 ms for
 * up to 30 s: a bound for a hang, not an expected time; under sanitizers
 * on a loaded 2-core machine a few seconds happen.
 */
#define SETTLE_TRIES	15000

/* ---- the daemon of this test --------------------------------------------- */

extern struct daemon_fixture d;

/* Start ioasidd with @config (NULL: none) at debug level. */
void start_daemon(const char *config);
/* A suite's .init and .fini: start with no config, stop if running. */
void setup_daemon(void);
void stop_quietly(void);
/* The end of every daemon test: no crash, no leak, clean exit. */
void expect_clean_exit(void);
/* expect_clean_exit(), then start again with @config. */
void restart_daemon(const char *config);
/* "[user UID]\n@body" for the running user (a static buffer). */
char *user_section(const char *body);
void sleep_ms(int ms);

/* ---- libioasid clients --------------------------------------------------- */

/* A context on the test's daemon. */
struct ioasid_ctx *remote_ctx(void);
/* A well-behaved client must keep working whatever the others send. */
void bystander_ok(struct ioasid_ctx *ctx);
/*
 * Wait until the daemon has exactly @sessions sessions (connections that
 * went away are reaped asynchronously), then its descriptor count.
 */
int settled_fds(struct ioasid_ctx *ctx, uint32_t sessions);
/* Descriptors of the daemon settle back to @want (closing is async). */
void expect_daemon_fds(int want);

/* ---- raw messages -------------------------------------------------------- */

struct raw {
	unsigned char b[8192] __attribute__((aligned(8)));
	size_t len;
};

struct nlmsghdr *raw_hdr(struct raw *m);
/* A request header for @cmd with sequence number @seq. */
void raw_begin(struct raw *m, uint8_t cmd, uint32_t seq);
void raw_attr(struct raw *m, uint16_t type, const void *data, uint16_t len);
void raw_u32(struct raw *m, uint16_t type, uint32_t v);
void raw_u64(struct raw *m, uint16_t type, uint64_t v);
void raw_str(struct raw *m, uint16_t type, const char *s);
/* A raw SOCK_SEQPACKET connection to the test's daemon. */
int raw_connect(void);
void raw_send(int s, const struct raw *m, const int *fds, int nfds);
void bytes_send(int s, const void *buf, size_t len);

/* The last packet raw_recv() got, and its descriptors (ours to close). */
extern unsigned char rxbuf[IOASID_MAX_MSG];
extern int rx_fds[8];
extern unsigned int rx_nfds;
void rx_close(void);
/* One packet: its length, 0 at end of connection, -errno on timeout. */
ssize_t raw_recv(int s, int timeout_ms);
/* The next message must be the reply to @seq; returns its errno. */
int reply_errno(int s, uint32_t seq, struct proto_msg *m);
/* An error reply with @err and a reason containing @part. */
void expect_error(int s, uint32_t seq, int err, const char *part);
void expect_ok(int s, uint32_t seq);
/* An op over a raw connection with the codec; its result. */
int codec_call(int s, struct ioasid_op *op);
/* The daemon closes the connection (end of file or reset). */
void expect_disconnect(int s);

#endif
