/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The request's one error setter, and its result helpers. */
#include <errno.h>
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

int op_out_array(struct ioasid_op *op, uint32_t n, uint32_t elem)
{
	op->out_len = n * elem;
	if (op->out_len > op->out_cap)
		return op_fail(op, EMSGSIZE, "%u entries do not fit in %u", n,
			       op->out_cap / elem);
	return 0;
}

int op_out_struct(struct ioasid_op *op, const void *src, uint32_t len)
{
	op->out_len = len < op->out_cap ? len : op->out_cap;
	memcpy(op->out, src, op->out_len);
	return 0;
}
