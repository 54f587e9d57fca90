/*
 * fuzz_command.c: the session's command parser.  The input is one command
 * line, taken as session_lines takes it: up to its LF, within
 * MAX_COMMAND_LINE octets with the line end, one CR before the LF
 * stripped, no NUL.  The verb split, the argument split for the word
 * counts of the verb table and every word read as a number are checked
 * against references written here from the rules.  session.c is included
 * for its static parsers and its table.
 */
#include "../session.c"
#include "fuzz.h"

/* A line end is 2 octets: a line over the limit never gets this far. */
#define LINE_CONTENT_MAX	(MAX_COMMAND_LINE - 2)

/* Words of a split at every space: a line of spaces has the most. */
#define WORDS_MAX		(LINE_CONTENT_MAX + 1)

/* parse_number's max is tried at the edges and a few values between. */
static const uint32_t	 number_max[] = { 1, 3, 100, UINT32_MAX - 1,
			    UINT32_MAX };

/*
 * The command line in the input as session_lines would pass it to
 * session_command, copied NUL-terminated into line; its length, or -1 if
 * the server refuses the line (too long, or a NUL in it).
 */
static int
command_line(const uint8_t *data, size_t size, char *line)
{
	const uint8_t	*lf;
	size_t		 len;

	if ((lf = memchr(data, '\n', size)) != NULL)
		size = lf - data;
	len = size;
	if (len + (len > 0 && data[len - 1] == '\r' ? 1 : 2) >
	    MAX_COMMAND_LINE)
		return -1;
	if (len > 0 && data[len - 1] == '\r')
		len--;
	if (memchr(data, '\0', len) != NULL)
		return -1;
	memcpy(line, data, len);
	line[len] = '\0';
	return (int)len;
}

/*
 * The number rule told another way: 1 to 10 digits that, at 10, compare
 * as text no greater than the largest uint32_t.  Returns 0 with *n set,
 * or -1.
 */
static int
ref_uint(const char *s, uint32_t *n)
{
	size_t	 i, len = strlen(s);

	if (len == 0 || len > 10)
		return -1;
	for (i = 0; i < len; i++)
		if (s[i] < '0' || s[i] > '9')
			return -1;
	if (len == 10 && strcmp(s, "4294967295") > 0)
		return -1;
	*n = (uint32_t)strtoul(s, NULL, 10);
	return 0;
}

/* parse_uint and parse_number on one word, against the reference. */
static void
check_number(const char *word)
{
	uint32_t	 got, want = 0;
	size_t		 i;
	int		 r;

	r = ref_uint(word, &want);
	FUZZ_CHECK(parse_uint(word, &got) == r);
	if (r == 0)
		FUZZ_CHECK(got == want);
	for (i = 0; i < sizeof(number_max) / sizeof(number_max[0]); i++) {
		got = parse_number(word, number_max[i]);
		if (r == -1 || want == 0 || want > number_max[i])
			FUZZ_CHECK(got == 0);
		else
			FUZZ_CHECK(got == want);
	}
}

/*
 * The words of s split at every space, empty ones included, as offsets
 * and lengths; returns their number.
 */
static size_t
ref_split(const char *s, size_t *start, size_t *len)
{
	size_t	 i = 0, n = 0;

	for (;;) {
		start[n] = i;
		while (s[i] != '\0' && s[i] != ' ')
			i++;
		len[n] = i - start[n];
		n++;
		if (s[i] == '\0')
			return n;
		i++;
	}
}

/*
 * parse_args on a copy of args into room for exactly max words (each a
 * heap block of its own, so that going past either is caught), against
 * the reference split.
 */
static void
check_args(const char *args, int max)
{
	size_t	 start[WORDS_MAX], len[WORDS_MAX], n, i, size;
	char	*buf, **argv;
	int	 empty = 0, want, got;

	argv = calloc(max, sizeof(*argv));
	FUZZ_CHECK(argv != NULL || max == 0);
	if (args == NULL) {
		FUZZ_CHECK(parse_args(NULL, argv, max) == 0);
		free(argv);
		return;
	}
	n = ref_split(args, start, len);
	for (i = 0; i < n; i++)
		if (len[i] == 0)
			empty = 1;
	want = empty || n > (size_t)max ? -1 : (int)n;

	/* Its own allocation: a read past the end is caught. */
	size = strlen(args) + 1;
	FUZZ_CHECK((buf = malloc(size)) != NULL);
	memcpy(buf, args, size);
	got = parse_args(buf, argv, max);
	FUZZ_CHECK(got == want);
	for (i = 0; got > 0 && i < (size_t)got; i++) {
		FUZZ_CHECK(argv[i] >= buf && argv[i] < buf + size);
		FUZZ_CHECK(argv[i][0] != '\0');
		FUZZ_CHECK(strchr(argv[i], ' ') == NULL);
		FUZZ_CHECK(strlen(argv[i]) == len[i]);
		FUZZ_CHECK(memcmp(argv[i], args + start[i], len[i]) == 0);
	}
	free(buf);
	free(argv);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char		 orig[LINE_CONTENT_MAX + 1];
	char		 line[LINE_CONTENT_MAX + 1];
	char		 word[LINE_CONTENT_MAX + 1];
	size_t		 start[WORDS_MAX], len[WORDS_MAX], n, i;
	const struct verb *v;
	const char	*sp;
	char		*verb, *args;
	int		 linelen, max;

	if ((linelen = command_line(data, size, orig)) == -1)
		return 0;
	memcpy(line, orig, linelen + 1);

	/* The verb ends at the first space; the arguments are the rest. */
	verb = parse_verb(line, &args);
	FUZZ_CHECK(verb == line);
	if ((sp = strchr(orig, ' ')) == NULL) {
		FUZZ_CHECK(args == NULL);
		FUZZ_CHECK(strcmp(verb, orig) == 0);
	} else {
		FUZZ_CHECK(args == line + (sp - orig) + 1);
		FUZZ_CHECK(strlen(verb) == (size_t)(sp - orig));
		FUZZ_CHECK(memcmp(verb, orig, sp - orig) == 0);
		FUZZ_CHECK(strcmp(args, sp + 1) == 0);
	}

	/*
	 * session_command splits the arguments for the most words the verb
	 * table allows: none (CAPA), one (LIST) or two (TOP), or whatever
	 * the table comes to allow.  PASS takes the rest of the line whole.
	 */
	for (max = 0; max <= 2; max++)
		check_args(args, max);
	for (v = session_verbs; v->name != NULL; v++)
		if (v->maxargs > 2)
			check_args(args, v->maxargs);

	/* Every word as a number, the empty ones and the whole line too. */
	check_number(orig);
	n = ref_split(orig, start, len);
	for (i = 0; i < n; i++) {
		memcpy(word, orig + start[i], len[i]);
		word[len[i]] = '\0';
		check_number(word);
	}
	return 0;
}
