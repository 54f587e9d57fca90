/*
 * session_stubs.c: the targets that include session.c run its parsers
 * only; the privilege drop and the sandbox it calls live in files they do
 * not link, and would end the fuzzer if they ran.
 */
#include <sys/types.h>

#include "pop3d.h"

void
priv_drop(const char *dir, uid_t uid, gid_t gid, int nogroups)
{
	(void)dir;
	(void)uid;
	(void)gid;
	(void)nogroups;
}

void
sandbox_session(void)
{
}

void
priv_check_fds(const int *keep, size_t n)
{
	(void)keep;
	(void)n;
}
