/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Logging inside the library: every message goes through the context's log
 * function (ioasid_set_log_fn()); nothing is printed directly.
 */
#ifndef IOASID_UTIL_LOG_H
#define IOASID_UTIL_LOG_H

#include <syslog.h>

struct ioasid_ctx;

void ioasid_log(struct ioasid_ctx *ctx, int priority, const char *file,
		int line, const char *fn, const char *format, ...)
	__attribute__((format(printf, 6, 7)));
int ioasid_log_enabled(const struct ioasid_ctx *ctx, int priority);

#define ioasid_log_cond(ctx, prio, ...)					\
	do {								\
		if (ioasid_log_enabled(ctx, prio))			\
			ioasid_log(ctx, prio, __FILE__, __LINE__,	\
				   __func__, __VA_ARGS__);		\
	} while (0)

#define dbg(ctx, ...)	ioasid_log_cond(ctx, LOG_DEBUG, __VA_ARGS__)
#define info(ctx, ...)	ioasid_log_cond(ctx, LOG_INFO, __VA_ARGS__)
#define notice(ctx, ...) ioasid_log_cond(ctx, LOG_NOTICE, __VA_ARGS__)
#define warn(ctx, ...)	ioasid_log_cond(ctx, LOG_WARNING, __VA_ARGS__)
#define err(ctx, ...)	ioasid_log_cond(ctx, LOG_ERR, __VA_ARGS__)

#endif
