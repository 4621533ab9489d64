/*
 * nhash: the command-line front end of libnhash.
 *
 *   nhash devices            list OpenCL platforms and devices
 *   nhash decode FILE...     decode to tensors and print their digests
 *
 * Further commands live in cli_*.c and are listed in nh_commands below.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <xxhash.h>

#include "cli.h"
#include "cli_out.h"
#include "nhash/cl.h"
#include "nhash/decode.h"

static int cmd_devices(int argc, char **argv)
{
    int json = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--json"))
            json = 1;
        else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            printf("usage: nhash devices [--json]\n\n"
                   "List OpenCL platforms and devices. Choose one for other commands with\n"
                   "--platform/--device or NH_CL_PLATFORM/NH_CL_DEVICE (index or name part).\n");
            return 0;
        } else {
            fprintf(stderr, "nhash devices: unknown option '%s'\n", argv[i]);
            return 2;
        }
    }
    nh_error err;
    nh_error_clear(&err);
    nh_cl_device_info *infos = NULL;
    size_t n = 0;
    if (nh_cl_list(&infos, &n, &err) != NH_OK) {
        char buf[2048];
        fprintf(stderr, "nhash devices: %s\n", nh_error_format(&err, buf, sizeof buf));
        return 1;
    }
    if (!json && n == 0)
        printf("no OpenCL devices (install an ICD: pocl-opencl-icd for CPUs, the vendor driver for GPUs)\n");
    for (size_t i = 0; i < n; i++) {
        const nh_cl_device_info *d = &infos[i];
        if (json)
            printf("{\"platform\":%d,\"device\":%d,\"platform_name\":\"%s\",\"device_name\":\"%s\","
                   "\"type\":\"%s\",\"compute_units\":%u,\"global_mem\":%llu,\"version\":\"%s\"}\n",
                   d->platform, d->device, d->platform_name, d->device_name,
                   nh_cl_type_name(d->type), d->compute_units, d->global_mem, d->device_version);
        else
            printf("platform %d device %d: %s [%s] %s, %u compute units, %.1f GiB, %s (%s)\n",
                   d->platform, d->device, d->device_name, nh_cl_type_name(d->type),
                   d->platform_name, d->compute_units, (double)d->global_mem / (1 << 30),
                   d->device_version, d->driver_version);
    }
    free(infos);
    return 0;
}

static void decode_usage(void)
{
    printf("usage: nhash decode [options] FILE...\n\n"
           "Decode images to RGB tensors and print one line per file:\n"
           "  PATH<TAB>WxH<TAB>xxh3-64 of the tensor   or   PATH<TAB>error<TAB>REASON\n"
           "(the reason also on stderr). A path with a backslash or a control character is\n"
           "escaped and its line starts with '\\', as in `nhash hash` text lines.\n\n"
           "  --mode compat|fast|nearest  compat: Pillow-exact (nnhash.py); fast: shrink-on-load\n"
           "  --size N[xM]        target size (default 360x360)\n"
           "  --autorotate        fast mode: apply EXIF orientation\n"
           "  --allow-untrusted   allow libvips loaders marked untrusted\n"
           "  --max-pixels N      refuse images over N pixels (default 100000000)\n"
           "  --threads N         decode workers (default: all cores)\n"
           "  --out DIR           also write each tensor as DIR/<index>.rgb (index: the file's\n"
           "                      position among FILE..., from 0). Each file is created new,\n"
           "                      never through a link: a name that exists already (a file or\n"
           "                      a planted symlink) is an error for that file and is left as\n"
           "                      it is, so use an empty folder\n");
}

static int cmd_decode(int argc, char **argv)
{
    nh_decode_opts opts;
    nh_decode_opts_default(&opts);
    int threads = 0;
    const char *outdir = NULL;
    unsigned long long num = 0;
    static const struct option lo[] = {
        {"mode", required_argument, 0, 'm'}, {"size", required_argument, 0, 's'},
        {"autorotate", no_argument, 0, 'r'}, {"allow-untrusted", no_argument, 0, 'u'},
        {"max-pixels", required_argument, 0, 'p'}, {"threads", required_argument, 0, 't'},
        {"out", required_argument, 0, 'o'}, {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        switch (c) {
        case 'm':
            if (!strcmp(optarg, "compat"))
                opts.mode = NH_DECODE_COMPAT;
            else if (!strcmp(optarg, "fast"))
                opts.mode = NH_DECODE_FAST;
            else if (!strcmp(optarg, "nearest"))
                opts.mode = NH_DECODE_NEAREST;
            else {
                fprintf(stderr, "nhash decode: unknown mode '%s'\n", optarg);
                return 2;
            }
            break;
        case 's':
            if (nh_cli_parse_size("nhash decode", "--size", optarg, 8192, &opts.width,
                                  &opts.height))
                return 2;
            break;
        case 'r': opts.autorotate = 1; break;
        case 'u': opts.allow_untrusted = 1; break;
        case 'p':
            if (nh_cli_parse_uint("nhash decode", "--max-pixels", optarg, 1, ~0ULL, &num))
                return 2;
            opts.max_pixels = num;
            break;
        case 't':
            if (nh_cli_parse_uint("nhash decode", "--threads", optarg, 0, 4096, &num))
                return 2;
            threads = (int)num;
            break;
        case 'o': outdir = optarg; break;
        case 'h': decode_usage(); return 0;
        default: decode_usage(); return 2;
        }
    }
    size_t n = (size_t)(argc - optind);
    if (n == 0) {
        decode_usage();
        return 2;
    }
    nh_error err;
    nh_error_clear(&err);
    nh_decode_pool *pool = NULL;
    char buf[2048];
    int dirfd = -1;
    if (outdir) {
        /* Files are created relative to the folder opened once, so a folder swapped for a
         * link midway cannot redirect them. */
        dirfd = open(outdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dirfd < 0) {
            fprintf(stderr, "nhash decode: --out %s: %s\n", outdir, strerror(errno));
            return 2;
        }
    }
    if (nh_decode_pool_create(&opts, threads, &pool, &err) != NH_OK) {
        fprintf(stderr, "nhash decode: %s\n", nh_error_format(&err, buf, sizeof buf));
        if (dirfd >= 0)
            close(dirfd);
        return 1;
    }
    size_t slot = nh_decode_out_bytes(&opts);
    size_t batch = (size_t)nh_decode_pool_threads(pool) * 4;
    uint8_t *out = malloc(slot * batch);
    nh_decode_result *res = calloc(batch, sizeof *res);
    int failed = 0;
    if (!out || !res) {
        fprintf(stderr, "nhash decode: out of memory\n");
        failed = 1;
        goto cleanup;
    }
    for (size_t base = 0; base < n; base += batch) {
        size_t m = n - base < batch ? n - base : batch;
        nh_decode_pool_run(pool, (const char *const *)argv + optind + base, m, out, res);
        for (size_t i = 0; i < m; i++) {
            const char *path = argv[optind + base + i];
            int esc = nh_text_path_needs_escape(path);
            if (esc)
                fputc('\\', stdout);
            nh_text_path(stdout, path, esc);
            if (res[i].status != NH_OK) {
                fprintf(stderr, "nhash: %s\n", nh_error_format(&res[i].err, buf, sizeof buf));
                /* The reason, one line: the message without the path (column one has it). */
                const char *why = res[i].err.msg[0] ? res[i].err.msg : nh_status_name(res[i].status);
                fputs("\terror\t", stdout);
                nh_text_path(stdout, why, nh_text_path_needs_escape(why));
                fputc('\n', stdout);
                failed = 1;
                continue;
            }
            size_t bytes = (size_t)res[i].info.width * res[i].info.height * 3;
            XXH64_hash_t h = XXH3_64bits(out + i * slot, bytes);
            printf("\t%dx%d\t%016llx\n", res[i].info.width, res[i].info.height,
                   (unsigned long long)h);
            if (dirfd >= 0) {
                char name[32];
                snprintf(name, sizeof name, "%zu.rgb", base + i);
                /* Exclusive create: O_EXCL fails on any existing name, a symlink included
                 * (dangling or not), and O_NOFOLLOW says the same for the last component. */
                int fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                                0644);
                const char *what = "create";
                int e = 0;
                if (fd < 0) {
                    e = errno;
                } else {
                    size_t done = 0;
                    what = "write";
                    while (done < bytes) {
                        ssize_t w = write(fd, out + i * slot + done, bytes - done);
                        if (w < 0 && errno == EINTR)
                            continue;
                        if (w <= 0) {
                            e = w < 0 ? errno : EIO;
                            break;
                        }
                        done += (size_t)w;
                    }
                    if (close(fd) != 0 && !e) {
                        e = errno;
                        what = "close";
                    }
                }
                if (e) {
                    fprintf(stderr, "nhash decode: cannot %s %s/%s: %s%s\n", what, outdir, name,
                            strerror(e),
                            e == EEXIST ? " (an existing name or link is never overwritten)" : "");
                    failed = 1;
                }
            }
        }
    }
cleanup:
    free(out);
    free(res);
    nh_decode_pool_destroy(pool);
    if (dirfd >= 0)
        close(dirfd);
    return failed ? 1 : 0;
}

int nh_cli_hash(int argc, char **argv);
int nh_cli_audit(int argc, char **argv);

int nh_cli_model(int argc, char **argv);

static const struct nh_cli_command nh_commands[] = {
    {"hash", nh_cli_hash, "hash images (neural, PDQ, file digest): the main job"},
    {"audit", nh_cli_audit, "match archives against a hash set, with per-archive counts"},
    {"devices", cmd_devices, "list OpenCL platforms and devices"},
    {"decode", cmd_decode, "decode images to tensors and print their digests"},
    {"model", nh_cli_model, "import, inspect and run hashing models (.nhm)"},
    {NULL, NULL, NULL},
};

static void usage(FILE *f)
{
    fprintf(f, "usage: nhash COMMAND [options] ...\n\ncommands:\n");
    for (const struct nh_cli_command *c = nh_commands; c->name; c++)
        fprintf(f, "  %-10s %s\n", c->name, c->summary);
    fprintf(f, "\n`nhash COMMAND --help` describes each command.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("nhash 0.1.0\n");
        return 0;
    }
    for (const struct nh_cli_command *c = nh_commands; c->name; c++)
        if (!strcmp(argv[1], c->name))
            return c->fn(argc - 1, argv + 1);
    fprintf(stderr, "nhash: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
