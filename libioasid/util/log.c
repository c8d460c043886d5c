/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The log sink: one function pointer, its data and a priority threshold. */
#include "util/log.h"

void ioasid_log(const struct log_sink *log, int priority, const char *file,
		int line, const char *fn, const char *format, ...)
{
	va_list ap;

	va_start(ap, format);
	log->fn(log->data, priority, file, line, fn, format, ap);
	va_end(ap);
}

int ioasid_log_enabled(const struct log_sink *log, int priority)
{
	return log && priority <= log->priority;
}
