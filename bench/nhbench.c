/*
 * nhbench: one front door for the benchmarks. `nhbench quality ...` runs the
 * `nhbench-quality` program that sits next to this one (or on PATH), with the same arguments;
 * likewise decode, net, pdq and db. Each benchmark is its own program so it can be built,
 * run and profiled alone.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const struct {
    const char *name, *what;
} subs[] = {
    {"decode", "decode throughput, compat and fast modes, beside vipsthumbnail"},
    {"net", "network images/s: OpenCL, C reference, onnxruntime-node"},
    {"pdq", "PDQ images/s end to end and decode-only, C and OpenCL"},
    {"db", "nhdb build rate and query latency: MIH, linear scan, FAISS"},
    {"quality", "robustness per transform, recall at FPR 1e-4 / 1e-6, ROC plots"},
};
#define NSUBS (sizeof subs / sizeof subs[0])

static void usage(FILE *f)
{
    fprintf(f, "usage: nhbench COMMAND [ARGS...]   (nhbench COMMAND --help for its options)\n\n");
    for (size_t i = 0; i < NSUBS; i++)
        fprintf(f, "  %-8s %s\n", subs[i].name, subs[i].what);
    fprintf(f, "\nPipeline end to end: bench/pipeline.sh (see README).\n");
}

int main(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    size_t i = 0;
    while (i < NSUBS && strcmp(argv[1], subs[i].name))
        i++;
    if (i == NSUBS) {
        fprintf(stderr, "nhbench: unknown command '%s'\n\n", argv[1]);
        usage(stderr);
        return 2;
    }
    char prog[64];
    snprintf(prog, sizeof prog, "nhbench-%s", subs[i].name);
    argv[1] = prog;
    /* Next to this executable first, so a build tree's benchmarks need no install. */
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n > 0) {
        self[n] = 0;
        char *slash = strrchr(self, '/');
        if (slash && (size_t)(slash - self) + 1 + strlen(prog) < sizeof self) {
            strcpy(slash + 1, prog);
            if (access(self, X_OK) == 0) {
                execv(self, argv + 1);
                fprintf(stderr, "nhbench: %s: %s\n", self, strerror(errno));
                return 127;
            }
        }
    }
    execvp(prog, argv + 1);
    fprintf(stderr, "nhbench: %s: %s (not built? see bench/ and NH_BUILD_BENCH)\n", prog, strerror(errno));
    return 127;
}
