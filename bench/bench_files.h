/* nhbench photo lists: files and folders walked by nh_input (the same walk as nhash hash),
 * kept when they look like photos (.jpg .jpeg .png .webp .tif .tiff .gif) and are not
 * hidden. */
#ifndef NHBENCH_FILES_H
#define NHBENCH_FILES_H

#include <stddef.h>

/*
 * The photos under args (files, or folders walked recursively in sorted order; flat: only
 * the files directly in each folder), at most max (0: no limit). Returned-owned: free each
 * string and the array. *n receives the count.
 */
char **nh_bench_files(char *const *args, size_t nargs, int flat, size_t max, size_t *n);

#endif
