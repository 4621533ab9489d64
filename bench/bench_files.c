/* nhbench photo lists. See bench_files.h. */
#include "bench_files.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "nhash/pipeline.h"

static int is_photo(const char *p)
{
    static const char *const exts[] = {".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff", ".gif"};
    const char *base = strrchr(p, '/');
    base = base ? base + 1 : p;
    if (base[0] == '.')
        return 0;
    const char *ext = strrchr(base, '.');
    for (size_t i = 0; ext && i < sizeof exts / sizeof *exts; i++)
        if (!strcasecmp(ext, exts[i]))
            return 1;
    return 0;
}

char **nh_bench_files(char *const *args, size_t nargs, int flat, size_t max, size_t *n)
{
    char **out = NULL;
    size_t cnt = 0, cap = 0;
    for (size_t a = 0; a < nargs; a++) {
        nh_input *in = NULL;
        if (nh_input_create(args + a, 1, 0, &in, NULL) != NH_OK)
            continue;
        size_t plen = strlen(args[a]);
        char *p;
        nh_error problem;
        while ((!max || cnt < max) && nh_input_next(in, &p, &problem) == NH_OK) {
            int keep = problem.status == NH_OK && is_photo(p) &&
                       !(flat && strlen(p) > plen + 1 && strchr(p + plen + 1, '/'));
            if (keep && cnt == cap) {
                cap = cap ? 2 * cap : 256;
                char **o2 = realloc(out, cap * sizeof *out);
                if (!o2)
                    exit(1);
                out = o2;
            }
            if (keep)
                out[cnt++] = p;
            else
                free(p);
        }
        nh_input_destroy(in);
    }
    *n = cnt;
    return out ? out : calloc(1, sizeof *out);
}
