/* nhash CLI helpers. See cli_out.h. */
#include "cli_out.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int nh_cli_pdq_backend(const char *s, nh_pdq_backend *out)
{
    if (!strcmp(s, "auto"))
        *out = NH_PDQ_BACKEND_AUTO;
    else if (!strcmp(s, "c"))
        *out = NH_PDQ_BACKEND_C;
    else if (!strcmp(s, "cl"))
        *out = NH_PDQ_BACKEND_CL;
    else
        return 1;
    return 0;
}

/* Digits only into *out; 0 on success, -1 on anything else, ERANGE-style overflow as 1. */
static int parse_digits(const char *s, size_t n, unsigned long long *out)
{
    if (n == 0)
        return -1;
    unsigned long long v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        unsigned d = (unsigned)(s[i] - '0');
        if (v > (~0ULL - d) / 10)
            return 1;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

int nh_cli_parse_uint(const char *prog, const char *name, const char *text,
                      unsigned long long min, unsigned long long max, unsigned long long *out)
{
    unsigned long long v = 0;
    int r = parse_digits(text, strlen(text), &v);
    if (r < 0) {
        fprintf(stderr, "%s: %s: '%s' is not a whole number in %llu..%llu\n", prog, name, text,
                min, max);
        return 2;
    }
    if (r > 0 || v < min || v > max) {
        fprintf(stderr, "%s: %s: '%s' is out of range %llu..%llu\n", prog, name, text, min, max);
        return 2;
    }
    *out = v;
    return 0;
}

int nh_cli_parse_size(const char *prog, const char *name, const char *text, unsigned max,
                      int *w, int *h)
{
    const char *x = strchr(text, 'x');
    unsigned long long a = 0, b = 0;
    int ra = parse_digits(text, x ? (size_t)(x - text) : strlen(text), &a);
    int rb = x ? parse_digits(x + 1, strlen(x + 1), &b) : ra;
    if (!x)
        b = a;
    if (ra < 0 || rb < 0) {
        fprintf(stderr, "%s: %s: '%s' is not a size N or WxH (each 1..%u)\n", prog, name, text,
                max);
        return 2;
    }
    if (ra > 0 || rb > 0 || a < 1 || b < 1 || a > max || b > max) {
        fprintf(stderr, "%s: %s: '%s' is out of range (each side 1..%u)\n", prog, name, text,
                max);
        return 2;
    }
    *w = (int)a;
    *h = (int)b;
    return 0;
}

static volatile sig_atomic_t *g_stop;

static void on_stop_signal(int sig)
{
    /* Every request, the first or a later one, only asks to stop after the batch in flight:
     * a second Ctrl-C or a SIGTERM must not lose what is about to be committed. */
    int first = g_stop && !*g_stop;
    if (g_stop)
        *g_stop = sig;
    if (!first) {
        static const char msg[] = "\nnhash: still finishing the batch in flight "
                                  "(kill -9 stops at once)\n";
        ssize_t w = write(2, msg, sizeof msg - 1);
        (void)w;
    }
}

void nh_cli_signals_install(volatile sig_atomic_t *stop)
{
    g_stop = stop;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sigaddset(&sa.sa_mask, SIGINT);
    sigaddset(&sa.sa_mask, SIGTERM);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    /* A parent may have blocked them (some job runners do): take them back. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigprocmask(SIG_UNBLOCK, &set, NULL);
}

int nh_cli_pipeline_option(const char *prog, int ch, const char *arg, nh_pipeline_opts *o)
{
    unsigned long long num;
    switch (ch) {
    case 'b':
        if (nh_cli_parse_uint(prog, "--batch", arg, 1, 1024, &num))
            return 2;
        o->batch = (size_t)num;
        return 0;
    case 't':
        if (nh_cli_parse_uint(prog, "--threads", arg, 0, 4096, &num))
            return 2;
        o->threads = (int)num;
        return 0;
    case 'B': o->backend = arg; return 0;
    case 'P': o->cl_platform = arg; return 0;
    case 'D': o->cl_device = arg; return 0;
    case 'd':
        if (!strcmp(arg, "compat"))
            o->decode.mode = NH_DECODE_COMPAT;
        else if (!strcmp(arg, "fast"))
            o->decode.mode = NH_DECODE_FAST;
        else {
            fprintf(stderr, "%s: unknown --decode '%s'\n", prog, arg);
            return 2;
        }
        return 0;
    case 'u': o->decode.allow_untrusted = 1; return 0;
    case 'x':
        if (nh_cli_parse_uint(prog, "--max-pixels", arg, 1, ~0ULL, &num))
            return 2;
        o->decode.max_pixels = num;
        return 0;
    case 'Q':
        if (nh_cli_pdq_backend(arg, &o->pdq_backend) != 0) {
            fprintf(stderr, "%s: unknown --pdq-backend '%s' (auto, c, cl)\n", prog, arg);
            return 2;
        }
        return 0;
    }
    return 1;
}
