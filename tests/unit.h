/*
 * unit.h: a tiny unit test harness, one header, no library.
 *
 *	static void
 *	test_something(void)
 *	{
 *		CHECK(1 + 1 == 2);
 *		CHECK_INT(f(), ==, 3);
 *		REQUIRE(p != NULL);	(fails and leaves the test function)
 *	}
 *
 *	int
 *	main(int argc, char *argv[])
 *	{
 *		unit_init(argc, argv);
 *		UNIT_RUN(test_something);
 *		return unit_end();
 *	}
 *
 * A test function fails if any check in it fails; each failed check is
 * reported on stderr with file:line and its text.  Arguments on the
 * command line select test functions by name.  unit_end prints exactly
 * "NAME: N passed, N failed" (NAME is the program's name, N counts test
 * functions) and returns the exit status: 1 if any test failed, else 0.
 */
#ifndef UNIT_H
#define UNIT_H

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* Failed checks reported per test function; the rest are only counted,
 * so that a check in a loop of a million cannot drown the output. */
#define UNIT_REPORT_MAX	10

static struct {
	const char	 *name;		/* the program's name */
	char		**only;		/* test functions named to run */
	int		  nonly;
	const char	 *test;		/* the test function running */
	int		  checks_failed;	/* in the running test */
	int		  passed;
	int		  failed;
} unit_state __attribute__((unused));

#define CHECK(cond) do {						\
	if (!(cond))							\
		unit_fail(__FILE__, __LINE__, "%s", #cond);		\
} while (0)

/* As CHECK, and leaves the (void) test function when it fails. */
#define REQUIRE(cond) do {						\
	if (!(cond)) {							\
		unit_fail(__FILE__, __LINE__, "%s", #cond);		\
		return;							\
	}								\
} while (0)

/* Compares two integers with op and shows both values when it fails. */
#define CHECK_INT(a, op, b) do {					\
	long long unit_a_ = (long long)(a), unit_b_ = (long long)(b);	\
	if (!(unit_a_ op unit_b_))					\
		unit_fail(__FILE__, __LINE__, "%s %s %s (%lld vs %lld)",\
		    #a, #op, #b, unit_a_, unit_b_);			\
} while (0)

/* Compares two NUL-terminated strings and shows both when they differ. */
#define CHECK_STR(a, b) do {						\
	const char *unit_a_ = (a), *unit_b_ = (b);			\
	if (unit_a_ == NULL || unit_b_ == NULL ||			\
	    strcmp(unit_a_, unit_b_) != 0)				\
		unit_fail(__FILE__, __LINE__, "%s == %s (\"%s\" vs \"%s\")",\
		    #a, #b, unit_a_ ? unit_a_ : "(null)",		\
		    unit_b_ ? unit_b_ : "(null)");			\
} while (0)

/* Compares n bytes. */
#define CHECK_MEM(a, b, n) do {						\
	if (memcmp((a), (b), (n)) != 0)					\
		unit_fail(__FILE__, __LINE__, "memcmp(%s, %s, %s) == 0",\
		    #a, #b, #n);					\
} while (0)

#define UNIT_RUN(fn)	unit_run(#fn, fn)

static void unit_fail(const char *, int, const char *, ...)
    __attribute__((format(printf, 3, 4), unused));

/* Records a failed check of the running test and reports it. */
static void
unit_fail(const char *file, int line, const char *fmt, ...)
{
	va_list	 ap;

	if (unit_state.checks_failed++ >= UNIT_REPORT_MAX)
		return;
	fprintf(stderr, "%s:%d: %s: check failed: ", file, line,
	    unit_state.test != NULL ? unit_state.test : "?");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* Takes the program's name and the test functions to run (all if none). */
static void __attribute__((unused))
unit_init(int argc, char *argv[])
{
	const char	*slash;

	unit_state.name = argc > 0 && argv[0] != NULL ? argv[0] : "unit";
	if ((slash = strrchr(unit_state.name, '/')) != NULL)
		unit_state.name = slash + 1;
	unit_state.only = argc > 1 ? argv + 1 : NULL;
	unit_state.nonly = argc > 1 ? argc - 1 : 0;
}

/* Runs one named test function unless the command line left it out. */
static void __attribute__((unused))
unit_run(const char *name, void (*fn)(void))
{
	int	 i;

	if (unit_state.nonly > 0) {
		for (i = 0; i < unit_state.nonly; i++)
			if (strcmp(unit_state.only[i], name) == 0)
				break;
		if (i == unit_state.nonly)
			return;
	}
	unit_state.test = name;
	unit_state.checks_failed = 0;
	fn();
	if (unit_state.checks_failed > UNIT_REPORT_MAX)
		fprintf(stderr, "%s: %d more failed checks not shown\n",
		    name, unit_state.checks_failed - UNIT_REPORT_MAX);
	if (unit_state.checks_failed > 0) {
		fprintf(stderr, "FAIL %s\n", name);
		unit_state.failed++;
	} else
		unit_state.passed++;
	unit_state.test = NULL;
}

/* Prints the summary line; returns the exit status for main. */
static int __attribute__((unused))
unit_end(void)
{
	printf("%s: %d passed, %d failed\n", unit_state.name != NULL ? unit_state.name :
	    "unit", unit_state.passed, unit_state.failed);
	fflush(stdout);
	return unit_state.failed > 0 ? 1 : 0;
}

#endif
