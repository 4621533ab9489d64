/* nhash worker pool. See nhash/pool.h. */
#include "nhash/pool.h"

#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

struct nh_pool {
    int nthreads, started;
    pthread_t *threads;
    void (*at_exit)(void);
    pthread_mutex_t mu;
    pthread_cond_t work_cv, done_cv;
    nh_pool_job *head; /* posted jobs, oldest first */
    int quit;
};

struct start {
    nh_pool *p;
    int w;
};

static void *worker(void *arg)
{
    struct start *s = arg;
    nh_pool *p = s->p;
    int w = s->w;
    free(s);
    pthread_mutex_lock(&p->mu);
    for (;;) {
        nh_pool_job *j = NULL;
        while (!p->quit) {
            for (j = p->head; j && j->next >= j->n; j = j->later)
                ;
            if (j)
                break;
            pthread_cond_wait(&p->work_cv, &p->mu);
        }
        if (p->quit)
            break;
        size_t i = j->next++;
        pthread_mutex_unlock(&p->mu);
        j->fn(j->ctx, w, i);
        pthread_mutex_lock(&p->mu);
        if (++j->done == j->n)
            pthread_cond_broadcast(&p->done_cv);
    }
    pthread_mutex_unlock(&p->mu);
    if (p->at_exit)
        p->at_exit();
    return NULL;
}

nh_status nh_pool_create(int nthreads, void (*at_exit)(void), nh_pool **out, nh_error *err)
{
    if (nthreads <= 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        nthreads = n > 0 ? (int)n : 1;
    }
    nh_pool *p = calloc(1, sizeof *p);
    if (!p)
        return nh_error_set(err, NH_ERR_NOMEM, NH_FOREIGN_NONE, 0, NULL, "out of memory");
    p->nthreads = nthreads;
    p->at_exit = at_exit;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->work_cv, NULL);
    pthread_cond_init(&p->done_cv, NULL);
    p->threads = calloc((size_t)nthreads, sizeof *p->threads);
    if (!p->threads) {
        nh_pool_destroy(p);
        return nh_error_set(err, NH_ERR_NOMEM, NH_FOREIGN_NONE, 0, NULL, "out of memory");
    }
    for (int i = 0; i < nthreads; i++) {
        struct start *s = malloc(sizeof *s);
        int rc = s ? 0 : 12;
        if (s) {
            s->p = p;
            s->w = i;
            rc = pthread_create(&p->threads[i], NULL, worker, s);
            if (rc)
                free(s);
        }
        if (rc) {
            nh_pool_destroy(p);
            return nh_error_set(err, NH_ERR_NOMEM, NH_FOREIGN_ERRNO, rc, NULL,
                                "cannot start worker thread");
        }
        p->started = i + 1;
    }
    *out = p;
    return NH_OK;
}

void nh_pool_destroy(nh_pool *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    p->quit = 1;
    pthread_cond_broadcast(&p->work_cv);
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < p->started; i++)
        pthread_join(p->threads[i], NULL);
    free(p->threads);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->work_cv);
    pthread_cond_destroy(&p->done_cv);
    free(p);
}

int nh_pool_threads(const nh_pool *p)
{
    return p->nthreads;
}

void nh_pool_post(nh_pool *p, nh_pool_job *job, size_t n, nh_pool_fn fn, void *ctx)
{
    job->fn = fn;
    job->ctx = ctx;
    job->n = n;
    job->next = job->done = 0;
    job->later = NULL;
    pthread_mutex_lock(&p->mu);
    nh_pool_job **tail = &p->head;
    while (*tail)
        tail = &(*tail)->later;
    *tail = job;
    pthread_cond_broadcast(&p->work_cv);
    pthread_mutex_unlock(&p->mu);
}

void nh_pool_wait(nh_pool *p, nh_pool_job *job)
{
    pthread_mutex_lock(&p->mu);
    while (job->done < job->n)
        pthread_cond_wait(&p->done_cv, &p->mu);
    for (nh_pool_job **q = &p->head; *q; q = &(*q)->later) {
        if (*q == job) {
            *q = job->later;
            break;
        }
    }
    pthread_mutex_unlock(&p->mu);
}

void nh_pool_run(nh_pool *p, size_t n, nh_pool_fn fn, void *ctx)
{
    nh_pool_job job;
    nh_pool_post(p, &job, n, fn, ctx);
    nh_pool_wait(p, &job);
}
