/* nhash pipeline input: arguments, recursive folder walks and stdin path lists. */
#include "nhash/pipeline.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* A folder being walked: its sorted entries and the next one to visit. */
struct frame {
    char *dir;
    struct dirent **list;
    int n, next;
};

struct nh_input {
    char *const *args;
    size_t nargs, next_arg;
    int nul_sep;
    int reading_stdin;
    struct frame *stack;
    size_t depth, cap;
    size_t count;
};

nh_status nh_input_create(char *const *args, size_t n, int nul_sep, nh_input **out,
                          nh_error *err)
{
    nh_input *in = calloc(1, sizeof *in);
    if (!in)
        return nh_error_set(err, NH_ERR_NOMEM, NH_FOREIGN_NONE, 0, NULL, "out of memory");
    in->args = args;
    in->nargs = n;
    in->nul_sep = nul_sep;
    *out = in;
    return NH_OK;
}

static void pop(nh_input *in)
{
    struct frame *f = &in->stack[--in->depth];
    for (int i = f->next; i < f->n; i++)
        free(f->list[i]);
    free(f->list);
    free(f->dir);
}

void nh_input_destroy(nh_input *in)
{
    if (!in)
        return;
    while (in->depth)
        pop(in);
    free(in->stack);
    free(in);
}

size_t nh_input_count(const nh_input *in)
{
    return in->count;
}

static int skip_dots(const struct dirent *d)
{
    return !(d->d_name[0] == '.' &&
             (d->d_name[1] == '\0' || (d->d_name[1] == '.' && d->d_name[2] == '\0')));
}

/* Push a folder; on failure report it through problem and return 0. */
static int push_dir(nh_input *in, const char *dir, nh_error *problem)
{
    struct dirent **list = NULL;
    int n = scandir(dir, &list, skip_dots, alphasort);
    if (n < 0) {
        nh_error_set(problem, NH_ERR_IO, NH_FOREIGN_ERRNO, errno, dir,
                     errno == EACCES ? "cannot list folder: permission denied"
                                     : "cannot list folder");
        return 0;
    }
    if (in->depth == in->cap) {
        size_t cap = in->cap ? in->cap * 2 : 16;
        struct frame *s = realloc(in->stack, cap * sizeof *s);
        if (!s) {
            for (int i = 0; i < n; i++)
                free(list[i]);
            free(list);
            nh_error_set(problem, NH_ERR_NOMEM, NH_FOREIGN_NONE, 0, dir, "out of memory");
            return 0;
        }
        in->stack = s;
        in->cap = cap;
    }
    struct frame *f = &in->stack[in->depth++];
    f->dir = strdup(dir);
    f->list = list;
    f->n = n;
    f->next = 0;
    return 1;
}

static char *read_stdin_path(int nul_sep)
{
    char *line = NULL;
    size_t cap = 0;
    for (;;) {
        ssize_t len = getdelim(&line, &cap, nul_sep ? '\0' : '\n', stdin);
        if (len < 0) {
            free(line);
            return NULL;
        }
        if (len > 0 && line[len - 1] == (nul_sep ? '\0' : '\n'))
            line[--len] = '\0';
        if (!nul_sep && len > 0 && line[len - 1] == '\r')
            line[--len] = '\0';
        if (len > 0)
            return line;
    }
}

nh_status nh_input_next(nh_input *in, char **path, nh_error *problem)
{
    nh_error_clear(problem);
    for (;;) {
        /* Inside a folder walk. */
        while (in->depth) {
            struct frame *f = &in->stack[in->depth - 1];
            if (f->next >= f->n) {
                pop(in);
                continue;
            }
            struct dirent *d = f->list[f->next++];
            size_t len = strlen(f->dir) + strlen(d->d_name) + 2;
            char *p = malloc(len);
            if (!p) {
                free(d);
                return nh_error_set(problem, NH_ERR_NOMEM, NH_FOREIGN_NONE, 0, NULL,
                                    "out of memory");
            }
            snprintf(p, len, "%s%s%s", f->dir, f->dir[strlen(f->dir) - 1] == '/' ? "" : "/",
                     d->d_name);
            free(d);
            struct stat sb;
            if (lstat(p, &sb) == 0 && S_ISDIR(sb.st_mode)) {
                if (!push_dir(in, p, problem)) {
                    *path = p;
                    in->count++;
                    return NH_OK;
                }
                free(p);
                continue;
            }
            if (lstat(p, &sb) == 0 && S_ISLNK(sb.st_mode)) {
                struct stat tb;
                if (stat(p, &tb) == 0 && S_ISDIR(tb.st_mode)) {
                    free(p); /* links to folders are not followed */
                    continue;
                }
            }
            *path = p;
            in->count++;
            return NH_OK;
        }
        if (in->reading_stdin) {
            char *p = read_stdin_path(in->nul_sep);
            struct stat sb;
            if (p && stat(p, &sb) == 0 && S_ISDIR(sb.st_mode)) {
                free(p); /* `find DIR` lists the folder's files too */
                continue;
            }
            if (p) {
                *path = p;
                in->count++;
                return NH_OK;
            }
            in->reading_stdin = 0;
        }
        if (in->next_arg >= in->nargs)
            return NH_ERR_NOT_FOUND;
        const char *a = in->args[in->next_arg++];
        if (!strcmp(a, "-")) {
            in->reading_stdin = 1;
            continue;
        }
        struct stat sb;
        if (stat(a, &sb) == 0 && S_ISDIR(sb.st_mode)) {
            if (!push_dir(in, a, problem)) {
                *path = strdup(a);
                in->count++;
                return *path ? NH_OK : NH_ERR_NOMEM;
            }
            continue;
        }
        *path = strdup(a);
        if (!*path)
            return nh_error_set(problem, NH_ERR_NOMEM, NH_FOREIGN_NONE, 0, NULL, "out of memory");
        in->count++;
        return NH_OK;
    }
}
