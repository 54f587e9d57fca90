/*
 * compat/strlcpy.c: strlcpy for C libraries without it (glibc before
 * 2.38).  pop3d copies every bounded string with it so that truncation is
 * detected, never silent.
 */
#include <string.h>

#include "../pop3d.h"

#ifndef HAVE_STRLCPY
size_t
strlcpy(char *dst, const char *src, size_t size)
{
	size_t	 len = strlen(src);

	if (size > 0) {
		if (len >= size) {
			memcpy(dst, src, size - 1);
			dst[size - 1] = '\0';
		} else
			memcpy(dst, src, len + 1);
	}
	return len;
}
#endif
