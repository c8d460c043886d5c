/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Logging inside the library: every message goes to a log sink, which the
 * context owns (ioasid_set_log_fn(), ioasid_set_log_priority()) and hands
 * down to the core, the backends and discovery; nothing is printed
 * directly.  A NULL sink discards everything.
 */
#ifndef IOASID_UTIL_LOG_H
#define IOASID_UTIL_LOG_H

#include <stdarg.h>
#include <syslog.h>

/* Same shape as the public ioasid_log_fn. */
typedef void (*log_sink_fn)(void *data, int priority, const char *file,
			    int line, const char *fn, const char *format,
			    va_list args);

struct log_sink {
	log_sink_fn fn;			/* never NULL */
	void *data;
	int priority;			/* highest syslog priority passed on */
};

void ioasid_log(const struct log_sink *log, int priority, const char *file,
		int line, const char *fn, const char *format, ...)
	__attribute__((format(printf, 6, 7)));
int ioasid_log_enabled(const struct log_sink *log, int priority);

#define ioasid_log_cond(log, prio, ...)					\
	do {								\
		if (ioasid_log_enabled(log, prio))			\
			ioasid_log(log, prio, __FILE__, __LINE__,	\
				   __func__, __VA_ARGS__);		\
	} while (0)

#define dbg(log, ...)	ioasid_log_cond(log, LOG_DEBUG, __VA_ARGS__)
#define info(log, ...)	ioasid_log_cond(log, LOG_INFO, __VA_ARGS__)
#define notice(log, ...) ioasid_log_cond(log, LOG_NOTICE, __VA_ARGS__)
#define warn(log, ...)	ioasid_log_cond(log, LOG_WARNING, __VA_ARGS__)
#define err(log, ...)	ioasid_log_cond(log, LOG_ERR, __VA_ARGS__)

#endif
