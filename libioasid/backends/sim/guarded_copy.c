/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * memcpy with SIGBUS/SIGSEGV recovery.  See guarded_copy.h for the rules.
 */
#include "guarded_copy.h"

#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

struct guard_ctx {
	sigjmp_buf env;
	uintptr_t dst, src;
	size_t len;
	void *fault_addr;
	int signo;
	struct guard_ctx *prev;	/* nesting */
};

static __thread struct guard_ctx *guard_armed
	__attribute__((tls_model("initial-exec")));

static struct sigaction old_sigbus, old_sigsegv;
static pthread_once_t guard_once = PTHREAD_ONCE_INIT;
static int guard_init_err;

static bool in_range(uintptr_t a, uintptr_t base, size_t len)
{
	return a - base < len;
}

/* Hand a fault that is not ours to whoever was there before us. */
static void guard_chain(int sig, siginfo_t *si, void *uc)
{
	struct sigaction *old = sig == SIGBUS ? &old_sigbus : &old_sigsegv;
	struct sigaction dfl;

	if (old->sa_flags & SA_SIGINFO) {
		old->sa_sigaction(sig, si, uc);
		return;
	}
	if (old->sa_handler != SIG_DFL && old->sa_handler != SIG_IGN) {
		old->sa_handler(sig);
		return;
	}
	/*
	 * Default action: restore it.  A hardware fault re-executes the
	 * access and dies with the right signal; a sent signal is re-raised
	 * (it stays blocked until we return).
	 */
	memset(&dfl, 0, sizeof(dfl));
	dfl.sa_handler = SIG_DFL;
	sigemptyset(&dfl.sa_mask);
	sigaction(sig, &dfl, NULL);
	if (si->si_code <= 0)
		raise(sig);
}

static void guard_handler(int sig, siginfo_t *si, void *uc)
{
	struct guard_ctx *ctx = guard_armed;
	uintptr_t a = (uintptr_t)si->si_addr;

	if (ctx && si->si_code > 0 &&
	    (in_range(a, ctx->src, ctx->len) ||
	     in_range(a, ctx->dst, ctx->len))) {
		ctx->fault_addr = si->si_addr;
		ctx->signo = sig;
		guard_armed = ctx->prev;
		siglongjmp(ctx->env, 1);
	}
	guard_chain(sig, si, uc);
}

static void guard_install(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = guard_handler;
	sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGBUS, &sa, &old_sigbus)) {
		guard_init_err = -errno;
		return;
	}
	if (sigaction(SIGSEGV, &sa, &old_sigsegv)) {
		guard_init_err = -errno;
		sigaction(SIGBUS, &old_sigbus, NULL);
	}
}

int sim_guard_init(void)
{
	pthread_once(&guard_once, guard_install);
	return guard_init_err;
}

/* The only place a fault may be taken: arm, memcpy, disarm. */
static int __attribute__((noinline))
copy_armed(struct guard_ctx *ctx, void *dst, const void *src, size_t len)
{
	sigset_t set;

	ctx->dst = (uintptr_t)dst;
	ctx->src = (uintptr_t)src;
	ctx->len = len;
	ctx->prev = guard_armed;
	if (sigsetjmp(ctx->env, 0)) {
		/* The kernel blocked the signal for the handler; we left the
		 * handler by longjmp without restoring the mask. */
		sigemptyset(&set);
		sigaddset(&set, ctx->signo);
		pthread_sigmask(SIG_UNBLOCK, &set, NULL);
		return -EFAULT;
	}
	guard_armed = ctx;
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	memcpy(dst, src, len);
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	guard_armed = ctx->prev;
	return 0;
}

/* Slow path: redo the copy in steps that never cross a page of either
 * buffer, so the first failing step is exactly the first bad page. */
static size_t copy_by_page(struct guard_ctx *ctx, char *dst, const char *src,
			   size_t len)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	size_t off = 0, n, ds, ss;

	while (off < len) {
		ds = page - (((uintptr_t)dst + off) & (page - 1));
		ss = page - (((uintptr_t)src + off) & (page - 1));
		n = ds < ss ? ds : ss;
		if (n > len - off)
			n = len - off;
		if (copy_armed(ctx, dst + off, src + off, n))
			break;
		off += n;
	}
	return off;
}

int sim_guarded_copy(void *dst, const void *src, size_t len, size_t *done,
		     struct sim_guard_fault *fault)
{
	struct guard_ctx ctx;
	int ret;

	*done = 0;
	ret = sim_guard_init();
	if (ret)
		return ret;
	if (!copy_armed(&ctx, dst, src, len)) {
		*done = len;
		return 0;
	}
	*done = copy_by_page(&ctx, dst, src, len);
	if (*done == len)	/* the fault went away (e.g. file regrown) */
		return 0;
	if (fault) {
		fault->addr = ctx.fault_addr;
		fault->signo = ctx.signo;
		fault->on_dst = in_range((uintptr_t)ctx.fault_addr, ctx.dst,
					 ctx.len);
	}
	return -EFAULT;
}
