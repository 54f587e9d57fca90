/*
 * fuzz.h: what the libFuzzer targets share.
 */
#ifndef FUZZ_H
#define FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/* libFuzzer's entry: called once for each input, which it owns. */
int	 LLVMFuzzerTestOneInput(const uint8_t *, size_t);

/*
 * An invariant: a failure aborts, which libFuzzer reports as a crash and
 * saves the input.  Not assert(3), which NDEBUG would turn off.
 */
#define FUZZ_CHECK(e) do {						\
	if (!(e)) {							\
		fprintf(stderr, "%s:%d: check failed: %s\n",		\
		    __FILE__, __LINE__, #e);				\
		abort();						\
	}								\
} while (0)

#endif
