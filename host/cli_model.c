/*
 * nhash model: import, inspect and run hashing models.
 *
 *   nhash model import MODEL.onnx SEED.dat -o OUT.nhm [--name S] [--version S] [--size N]
 *   nhash model info M.nhm [--nodes]
 *   nhash model hash M.nhm [--backend opencl|ref] [--format hex|base64|bits] [--batch N] FILE...
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cli_out.h"
#include "nhash/decode.h"
#include "nhash/net.h"

int nh_cli_model(int argc, char **argv);

static void usage(FILE *f)
{
    fprintf(f, "usage: nhash model import MODEL.onnx SEED.dat -o OUT.nhm [--name S] [--version S] "
               "[--size N] [--f16]\n"
               "       nhash model info M.nhm [--nodes]\n"
               "       nhash model hash M.nhm [--backend opencl|ref] [--format hex|base64|bits]\n"
               "                        [--batch N] [--platform P] [--device D] FILE...\n\n"
               "import  convert an ONNX model and a nnhash.py seed file (128-byte header + rows\n"
               "        of float32) into an .nhm model file; --f16 stores the weights as binary16\n"
               "        (half the size; the model in the file is then the rounded one)\n"
               "info    print a model's summary and fingerprint\n"
               "hash    hash images (Pillow-compatible decode): PATH<TAB>HASH<TAB>min|score|\n");
}

static nh_status read_all(const char *path, uint8_t **out, size_t *len, nh_error *err)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return nh_error_set(err, NH_ERR_IO, NH_FOREIGN_ERRNO, errno, path, "cannot open: %s",
                            strerror(errno));
    uint8_t *buf = NULL;
    size_t n = 0, cap = 0;
    nh_status st = NH_OK;
    for (;;) {
        if (n == cap) {
            cap = cap ? cap * 2 : 1 << 20;
            uint8_t *b2 = realloc(buf, cap);
            if (!b2) {
                st = nh_error_set(err, NH_ERR_NOMEM, NH_FOREIGN_NONE, 0, path, "out of memory");
                goto cleanup;
            }
            buf = b2;
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0) {
            if (ferror(f))
                st = nh_error_set(err, NH_ERR_IO, NH_FOREIGN_ERRNO, errno, path, "cannot read");
            break;
        }
    }
cleanup:
    fclose(f);
    if (st != NH_OK) {
        free(buf);
        return st;
    }
    *out = buf;
    *len = n;
    return NH_OK;
}

static int fail(const char *cmd, const nh_error *err)
{
    char buf[2048];
    fprintf(stderr, "nhash model %s: %s\n", cmd, nh_error_format(err, buf, sizeof buf));
    return 1;
}

static int cmd_import(int argc, char **argv)
{
    const char *out = NULL;
    nh_onnx_opts o = {0, 0, NULL, NULL};
    static const struct option lo[] = {
        {"output", required_argument, 0, 'o'},  {"name", required_argument, 0, 'n'},
        {"version", required_argument, 0, 'v'}, {"size", required_argument, 0, 's'},
        {"f16", no_argument, 0, 'F'},
        {"help", no_argument, 0, 'h'},          {0, 0, 0, 0}};
    int c, f16 = 0;
    unsigned long long num = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, "o:h", lo, NULL)) != -1) {
        switch (c) {
        case 'o':
            out = optarg;
            break;
        case 'F':
            f16 = 1;
            break;
        case 'n':
            o.name = optarg;
            break;
        case 'v':
            o.version = optarg;
            break;
        case 's':
            if (nh_cli_parse_uint("nhash model import", "--size", optarg, 1, 8192, &num))
                return 2;
            o.in_h = o.in_w = (uint32_t)num;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (argc - optind != 2 || !out) {
        usage(stderr);
        return 2;
    }
    nh_error err;
    nh_error_clear(&err);
    uint8_t *onnx = NULL, *seedf = NULL;
    size_t onnx_len = 0, seed_len = 0;
    nh_model *m = NULL;
    float *seed = NULL;
    uint32_t rows = 0;
    int rc = 1;
    if (read_all(argv[optind], &onnx, &onnx_len, &err) != NH_OK ||
        read_all(argv[optind + 1], &seedf, &seed_len, &err) != NH_OK ||
        nh_onnx_import(onnx, onnx_len, NULL, 0, &o, &m, &err) != NH_OK ||
        nh_onnx_read_seed(seedf, seed_len, m->out_dim, &seed, &rows, &err) != NH_OK) {
        rc = fail("import", &err);
        goto cleanup;
    }
    m->seed = seed;
    m->hash_bits = rows;
    seed = NULL;
    double max_rel = 0;
    if (f16 && nh_model_to_f16(m, &max_rel, &err) != NH_OK) {
        rc = fail("import", &err);
        goto cleanup;
    }
    if (f16)
        printf("weights stored as binary16: largest relative change %.3g%s\n", max_rel,
               max_rel == 0 ? " (every weight was exact)" : "");
    if (nh_model_validate(m, &err) != NH_OK || nh_model_save(m, out, &err) != NH_OK) {
        rc = fail("import", &err);
        goto cleanup;
    }
    printf("%s: %u nodes, %u weights, %u-bit hash, fingerprint %016llx\n", out, m->n_nodes,
           m->n_weights, m->hash_bits, (unsigned long long)m->fingerprint);
    rc = 0;
cleanup:
    free(onnx);
    free(seedf);
    free(seed);
    nh_model_destroy(m);
    return rc;
}

static int cmd_info(int argc, char **argv)
{
    int nodes = 0;
    const char *path = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--nodes"))
            nodes = 1;
        else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            usage(stdout);
            return 0;
        } else if (!path)
            path = argv[i];
        else {
            usage(stderr);
            return 2;
        }
    }
    if (!path) {
        usage(stderr);
        return 2;
    }
    nh_error err;
    nh_error_clear(&err);
    nh_model *m = NULL;
    if (nh_model_load(path, &m, &err) != NH_OK)
        return fail("info", &err);
    unsigned counts[NH_OP_ADD + 1] = {0};
    for (uint32_t i = 0; i < m->n_nodes; i++)
        counts[m->nodes[i].op]++;
    printf("model:        %s (version %s)\n", m->name, m->version);
    printf("fingerprint:  %016llx\n", (unsigned long long)m->fingerprint);
    printf("input:        %ux%ux%u, preprocessing %s\n", m->in_c, m->in_h, m->in_w,
           m->preprocess == NH_PRE_PM1 ? "uint8/255*2-1" : "none");
    nh_shape o = m->shapes[m->n_nodes];
    printf("output:       %u (%ux%ux%u)\n", m->out_dim, o.c, o.h, o.w);
    printf("hash:         %u bits\n", m->hash_bits);
    printf("nodes:        %u (conv %u, inorm %u, act %u, gap %u, mul %u, add %u)\n", m->n_nodes,
           counts[NH_OP_CONV], counts[NH_OP_INORM], counts[NH_OP_ACT], counts[NH_OP_GAP],
           counts[NH_OP_MUL], counts[NH_OP_ADD]);
    printf("weights:      %u floats (%.2f MB, stored as %s)\n", m->n_weights,
           m->n_weights * (m->weight_format == NH_NHM_WEIGHTS_F16 ? 2.0 : 4.0) / 1e6,
           m->weight_format == NH_NHM_WEIGHTS_F16 ? "binary16" : "binary32");
    printf("multiply-adds: %.1f M per image\n", (double)nh_model_macs(m) / 1e6);
    if (nodes)
        for (uint32_t i = 0; i < m->n_nodes; i++) {
            const nh_node *nd = &m->nodes[i];
            nh_shape s = m->shapes[i + 1];
            printf("%4u %-6s in %u", i, nh_op_name(nd->op), nd->in[0]);
            if (nd->in[1] != NH_NO_TENSOR)
                printf(",%u", nd->in[1]);
            if (nd->op == NH_OP_CONV)
                printf(" k%ux%u s%u pad %u,%u,%u,%u g%u%s", nd->kh, nd->kw, nd->stride, nd->pad[0],
                       nd->pad[1], nd->pad[2], nd->pad[3], nd->groups, nd->aux ? " bias" : "");
            if (nd->op == NH_OP_ACT)
                printf(" %s", nh_act_name(nd->aux));
            if (nd->op == NH_OP_INORM)
                printf(" eps %g", nd->eps);
            printf(" -> %ux%ux%u\n", s.c, s.h, s.w);
        }
    nh_model_destroy(m);
    return 0;
}

static int cmd_hash(int argc, char **argv)
{
    const char *backend = "opencl", *format = "hex", *plat = NULL, *dev = NULL;
    size_t batch = 8;
    static const struct option lo[] = {{"backend", required_argument, 0, 'b'},
                                       {"format", required_argument, 0, 'f'},
                                       {"batch", required_argument, 0, 'n'},
                                       {"platform", required_argument, 0, 'p'},
                                       {"device", required_argument, 0, 'd'},
                                       {"help", no_argument, 0, 'h'},
                                       {0, 0, 0, 0}};
    int c;
    unsigned long long num = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        switch (c) {
        case 'b':
            backend = optarg;
            break;
        case 'f':
            format = optarg;
            break;
        case 'n':
            if (nh_cli_parse_uint("nhash model hash", "--batch", optarg, 1, 256, &num))
                return 2;
            batch = (size_t)num;
            break;
        case 'p':
            plat = optarg;
            break;
        case 'd':
            dev = optarg;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (argc - optind < 2 || batch == 0 || batch > 256 ||
        (strcmp(format, "hex") && strcmp(format, "base64") && strcmp(format, "bits")) ||
        (strcmp(backend, "opencl") && strcmp(backend, "ref"))) {
        usage(stderr);
        return 2;
    }
    nh_error err;
    nh_error_clear(&err);
    nh_model *m = NULL;
    nh_cl *cl = NULL;
    nh_runner *r = NULL;
    uint8_t *rgb = NULL, *hashes = NULL;
    float *out = NULL;
    double *minabs = NULL;
    int rc = 1;
    if (nh_model_load(argv[optind], &m, &err) != NH_OK)
        return fail("hash", &err);
    if (m->hash_bits == 0 || m->preprocess != NH_PRE_PM1) {
        fprintf(stderr, "nhash model hash: model has no seed projection or uint8 input\n");
        goto cleanup;
    }
    int is_cl = !strcmp(backend, "opencl");
    if (is_cl && nh_cl_create(plat, dev, &cl, &err) != NH_OK) {
        rc = fail("hash", &err);
        goto cleanup;
    }
    nh_runner_opts ro = {batch, cl};
    if (nh_runner_create(is_cl ? &nh_runner_cl : &nh_runner_ref, m, &ro, &r, &err) != NH_OK) {
        rc = fail("hash", &err);
        goto cleanup;
    }
    nh_decode_opts dopts;
    nh_decode_opts_default(&dopts);
    dopts.width = (int)m->in_w;
    dopts.height = (int)m->in_h;
    size_t img = (size_t)m->in_w * m->in_h * 3, hb = m->hash_bits / 8;
    rgb = malloc(img * batch);
    out = malloc(sizeof(float) * m->out_dim * batch);
    hashes = malloc(hb * batch);
    minabs = malloc(sizeof(double) * batch);
    const char **names = malloc(sizeof(char *) * batch);
    if (!rgb || !out || !hashes || !minabs || !names) {
        free(names);
        fprintf(stderr, "nhash model hash: out of memory\n");
        goto cleanup;
    }
    rc = 0;
    char buf[2048];
    for (int i = optind + 1; i < argc;) {
        size_t k = 0;
        for (; i < argc && k < batch; i++) {
            nh_error de;
            nh_error_clear(&de);
            if (nh_decode_file(argv[i], &dopts, rgb + k * img, NULL, &de) != NH_OK) {
                fprintf(stderr, "nhash: %s\n", nh_error_format(&de, buf, sizeof buf));
                printf("%s\terror\t%s\n", argv[i], nh_status_name(de.status));
                rc = 1;
                continue;
            }
            names[k++] = argv[i];
        }
        if (!k)
            continue;
        if (nh_runner_run(r, rgb, k, out, &err) != NH_OK ||
            nh_net_hash(m, out, k, hashes, minabs, NULL, &err) != NH_OK) {
            free(names);
            rc = fail("hash", &err);
            goto cleanup;
        }
        for (size_t j = 0; j < k; j++) {
            const uint8_t *h = hashes + j * hb;
            char text[NH_NHM_MAX_HASH_BITS + 1];
            if (!strcmp(format, "hex"))
                nh_hex_encode(h, hb, text);
            else if (!strcmp(format, "base64"))
                nh_base64_encode(h, hb, text);
            else {
                for (unsigned b = 0; b < m->hash_bits; b++)
                    text[b] = (char)('0' + nh_hash_bit(h, b));
                text[m->hash_bits] = '\0';
            }
            printf("%s\t%s\t%.3g\n", names[j], text, minabs[j]);
        }
    }
    free(names);
cleanup:
    free(rgb);
    free(out);
    free(hashes);
    free(minabs);
    nh_runner_destroy(r);
    nh_cl_destroy(cl);
    nh_model_destroy(m);
    return rc;
}

int nh_cli_model(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "import"))
        return cmd_import(argc - 1, argv + 1);
    if (!strcmp(argv[1], "info"))
        return cmd_info(argc - 1, argv + 1);
    if (!strcmp(argv[1], "hash"))
        return cmd_hash(argc - 1, argv + 1);
    fprintf(stderr, "nhash model: unknown subcommand '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
