/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Simulated IOMMU: memcpy that survives SIGBUS/SIGSEGV.
 *
 * Integration note
 * ----------------
 * Called by the DMA engine (dma.c) for every page chunk; usable by anyone
 * who copies to or from guest memory that may vanish under them (truncated
 * memfd, private guest_memfd pages, munmapped regions).
 *
 * How it works: one process-wide SIGBUS and SIGSEGV handler is installed
 * with sigaction() on first use (or sim_guard_init()).  A copy arms a
 * thread-local context (sigsetjmp, no signal-mask save: no syscall), runs a
 * plain memcpy, and disarms.  The handler siglongjmp()s back only if the
 * faulting thread is armed, the signal was raised by the kernel for a
 * memory access (si_code > 0) and si_addr lies inside the armed source or
 * destination range.  Every other fault is CHAINED to the handler that was
 * installed before ours (SA_SIGINFO or plain handler; SIG_DFL/SIG_IGN is
 * emulated by restoring the default disposition and letting the access
 * fault again, so the process dies with the original signal and core).
 *
 * Good-citizen rules and caveats:
 *  - Install order matters: a handler installed AFTER ours that does not
 *    chain to us disables the recovery (faults then kill the process as
 *    they would without this library).  Under ASan, ASan's handlers are
 *    installed first and become our "previous" handler; keep ASan's
 *    allow_user_segv_handler=1 (the default).
 *  - Our handler runs with SA_ONSTACK (respects the thread's sigaltstack,
 *    needed to report stack overflows through the chained handler).
 *  - The thread-local state uses the initial-exec TLS model so the handler
 *    never allocates.
 *  - After a recovered fault the signal is unblocked again on the thread.
 *  - On the slow path (a fault happened) the copy is redone page by page to
 *    report exactly how many leading bytes were copied: memcpy does not
 *    copy in address order, so the fault address alone cannot tell.
 *
 * Thread safety: fully reentrant; nested guarded copies (e.g. from a signal
 * handler) are supported.
 */
#ifndef IOASID_SIM_GUARDED_COPY_H
#define IOASID_SIM_GUARDED_COPY_H

#include <stdbool.h>
#include <stddef.h>

struct sim_guard_fault {
	void *addr;		/* faulting address (si_addr) */
	int signo;		/* SIGBUS or SIGSEGV */
	bool on_dst;		/* fault in the destination buffer */
};

/* Install the handlers now (idempotent).  Returns 0 or -errno. */
int sim_guard_init(void);

/*
 * Copy len bytes from src to dst (non-overlapping).  Returns 0 with
 * *done = len, or -EFAULT with *done = number of leading bytes that were
 * copied (dst[0..*done) holds src[0..*done); bytes after it may or may not
 * have been written) and *fault describing the first inaccessible page.
 * Returns the error of sim_guard_init() if the handler cannot be
 * installed (nothing copied).  fault may be NULL.
 */
int sim_guarded_copy(void *dst, const void *src, size_t len, size_t *done,
		     struct sim_guard_fault *fault);

#endif /* IOASID_SIM_GUARDED_COPY_H */
