/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The request's one error setter. */
#include <stdarg.h>
#include <stdio.h>

#include "op/op.h"

int op_failv(char *msg, size_t size, int errnum, const char *fmt, va_list ap)
{
	vsnprintf(msg, size, fmt, ap);
	return -errnum;
}

int op_fail(struct ioasid_op *op, int errnum, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	op_failv(op->errmsg, sizeof(op->errmsg), errnum, fmt, ap);
	va_end(ap);
	return -errnum;
}
