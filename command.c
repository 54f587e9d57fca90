/*
 * command.c: the words of a client's command line, as the session's
 * verb table wants them (RFC 1939 3: a keyword, then arguments
 * separated by single spaces).  Nothing here knows the session: what
 * comes from the client is checked in these few lines, which
 * tests/unit_session.c and fuzz/fuzz_command.c test on their own.
 */
#include <sys/types.h>

#include <stdint.h>
#include <string.h>

#include "pop3d.h"

/*
 * A decimal number: 1 to 10 digits, nothing else, and no overflow
 * ("4294967297" is not 1).  Returns 0 with *n set, or -1.
 */
int
parse_uint(const char *arg, uint32_t *n)
{
	uint64_t	 v = 0;
	size_t		 i, len = strlen(arg);

	if (len == 0 || len > 10)
		return -1;
	for (i = 0; i < len; i++) {
		if (arg[i] < '0' || arg[i] > '9')
			return -1;
		v = v * 10 + (arg[i] - '0');
	}
	if (v > UINT32_MAX)
		return -1;
	*n = v;
	return 0;
}

/* A message number: 1 to max; returns it, or 0 if invalid. */
uint32_t
parse_number(const char *arg, uint32_t max)
{
	uint32_t	 n;

	if (parse_uint(arg, &n) == -1 || n == 0 || n > max)
		return 0;
	return n;
}

/*
 * Splits "VERB arg1 arg2" in place: the verb is returned, args points at
 * the rest (after one space) or is NULL.
 */
char *
parse_verb(char *line, char **args)
{
	char	*sp;

	*args = NULL;
	if ((sp = strchr(line, ' ')) != NULL) {
		*sp = '\0';
		*args = sp + 1;
	}
	return line;
}

/* Splits args into at most max words separated by single spaces;
 * returns the number of words, or -1 if there are more or empty ones. */
int
parse_args(char *args, char **argv, int max)
{
	int	 n = 0;
	char	*p;

	if (args == NULL)
		return 0;
	while ((p = strsep(&args, " ")) != NULL) {
		if (*p == '\0' || n == max)
			return -1;
		argv[n++] = p;
	}
	return n;
}
