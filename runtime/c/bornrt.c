/* bornrt.c: implementation of bornrt.h. See that header for the contracts. */
#if !defined(BORNC_NO_THREADS) && !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE 200809L
#endif
#include "bornrt.h"

#include <stdio.h>
#include <string.h>

void (*bornc_kernel_hook)(int kernel) = 0;

const char *bornc_status_string(bornc_status_t status) {
    switch (status) {
    case BORNC_OK: return "ok";
    case BORNC_ERR_ARGUMENT: return "invalid argument";
    case BORNC_ERR_ARENA: return "arena missing, too small or misaligned";
    case BORNC_ERR_WEIGHTS: return "weights missing, wrong size or checksum mismatch";
    case BORNC_ERR_INDEX: return "index out of range";
    case BORNC_ERR_IO: return "file input/output failed";
    case BORNC_ERR_FORMAT: return "malformed .npy or shape/dtype mismatch";
    }
    return "unknown status";
}

size_t bornc_dtype_size(bornc_dtype_t dtype) {
    switch (dtype) {
    case BORNC_UINT8: case BORNC_INT8: case BORNC_BOOL: return 1;
    case BORNC_FLOAT8E4M3FN: case BORNC_FLOAT8E4M3FNUZ: case BORNC_FLOAT8E5M2: case BORNC_FLOAT8E5M2FNUZ:
    case BORNC_UINT4: case BORNC_INT4: case BORNC_FLOAT4E2M1: case BORNC_UINT2: case BORNC_INT2: case BORNC_FLOAT8E8M0: return 1;
    case BORNC_UINT16: case BORNC_INT16: case BORNC_FLOAT16: case BORNC_BFLOAT16: return 2;
    case BORNC_FLOAT32: case BORNC_INT32: case BORNC_UINT32: return 4;
    case BORNC_INT64: case BORNC_FLOAT64: case BORNC_UINT64: return 8;
    }
    return 0;
}

/* ---- SHA-256, FIPS 180-4 section 6.2 ---- */
static const uint32_t sha_k[64] = {
    0x428a2f98u, 0x71374491u, 0xb5c0fbcfu, 0xe9b5dba5u, 0x3956c25bu, 0x59f111f1u, 0x923f82a4u, 0xab1c5ed5u,
    0xd807aa98u, 0x12835b01u, 0x243185beu, 0x550c7dc3u, 0x72be5d74u, 0x80deb1feu, 0x9bdc06a7u, 0xc19bf174u,
    0xe49b69c1u, 0xefbe4786u, 0x0fc19dc6u, 0x240ca1ccu, 0x2de92c6fu, 0x4a7484aau, 0x5cb0a9dcu, 0x76f988dau,
    0x983e5152u, 0xa831c66du, 0xb00327c8u, 0xbf597fc7u, 0xc6e00bf3u, 0xd5a79147u, 0x06ca6351u, 0x14292967u,
    0x27b70a85u, 0x2e1b2138u, 0x4d2c6dfcu, 0x53380d13u, 0x650a7354u, 0x766a0abbu, 0x81c2c92eu, 0x92722c85u,
    0xa2bfe8a1u, 0xa81a664bu, 0xc24b8b70u, 0xc76c51a3u, 0xd192e819u, 0xd6990624u, 0xf40e3585u, 0x106aa070u,
    0x19a4c116u, 0x1e376c08u, 0x2748774cu, 0x34b0bcb5u, 0x391c0cb3u, 0x4ed8aa4au, 0x5b9cca4fu, 0x682e6ff3u,
    0x748f82eeu, 0x78a5636fu, 0x84c87814u, 0x8cc70208u, 0x90befffau, 0xa4506cebu, 0xbef9a3f7u, 0xc67178f2u};

#define ROTR(x, n) (((x) >> (n)) | ((x) << (32 - (n))))

static void sha_block(uint32_t h[8], const uint8_t *p) {
    uint32_t w[64], a, b, c, d, e, f, g, hh;
    int i;
    for (i = 0; i < 16; i++)
        w[i] = ((uint32_t)p[4 * i] << 24) | ((uint32_t)p[4 * i + 1] << 16) | ((uint32_t)p[4 * i + 2] << 8) | p[4 * i + 3];
    for (i = 16; i < 64; i++) {
        uint32_t s0 = ROTR(w[i - 15], 7) ^ ROTR(w[i - 15], 18) ^ (w[i - 15] >> 3);
        uint32_t s1 = ROTR(w[i - 2], 17) ^ ROTR(w[i - 2], 19) ^ (w[i - 2] >> 10);
        w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    a = h[0]; b = h[1]; c = h[2]; d = h[3]; e = h[4]; f = h[5]; g = h[6]; hh = h[7];
    for (i = 0; i < 64; i++) {
        uint32_t t1 = hh + (ROTR(e, 6) ^ ROTR(e, 11) ^ ROTR(e, 25)) + ((e & f) ^ (~e & g)) + sha_k[i] + w[i];
        uint32_t t2 = (ROTR(a, 2) ^ ROTR(a, 13) ^ ROTR(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
        hh = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2;
    }
    h[0] += a; h[1] += b; h[2] += c; h[3] += d; h[4] += e; h[5] += f; h[6] += g; h[7] += hh;
}

void bornc_sha256_init(bornc_sha256_t *s) {
    static const uint32_t h0[8] = {0x6a09e667u, 0xbb67ae85u, 0x3c6ef372u, 0xa54ff53au,
                                   0x510e527fu, 0x9b05688cu, 0x1f83d9abu, 0x5be0cd19u};
    memcpy(s->h, h0, sizeof h0);
    s->buf_len = 0;
    s->total = 0;
}

void bornc_sha256_update(bornc_sha256_t *s, const void *data, size_t n) {
    const uint8_t *p = (const uint8_t *)data;
    s->total += n;
    if (s->buf_len) {
        size_t take = 64 - s->buf_len < n ? 64 - s->buf_len : n;
        memcpy(s->buf + s->buf_len, p, take);
        s->buf_len += take;
        p += take;
        n -= take;
        if (s->buf_len == 64) {
            sha_block(s->h, s->buf);
            s->buf_len = 0;
        }
    }
    while (n >= 64) {
        sha_block(s->h, p);
        p += 64;
        n -= 64;
    }
    if (n) {
        memcpy(s->buf, p, n);
        s->buf_len = n;
    }
}

void bornc_sha256_final(bornc_sha256_t *s, uint8_t out[32]) {
    uint8_t pad[72];
    uint64_t bits = s->total * 8u;
    size_t padlen = (s->buf_len < 56 ? 56 : 120) - s->buf_len, i;
    memset(pad, 0, sizeof pad);
    pad[0] = 0x80;
    for (i = 0; i < 8; i++)
        pad[padlen + i] = (uint8_t)(bits >> (56 - 8 * i));
    bornc_sha256_update(s, pad, padlen + 8);
    for (i = 0; i < 8; i++) {
        out[4 * i] = (uint8_t)(s->h[i] >> 24); out[4 * i + 1] = (uint8_t)(s->h[i] >> 16);
        out[4 * i + 2] = (uint8_t)(s->h[i] >> 8); out[4 * i + 3] = (uint8_t)s->h[i];
    }
}

void bornc_sha256(const void *data, size_t n, uint8_t out[32]) {
    bornc_sha256_t s;
    bornc_sha256_init(&s);
    bornc_sha256_update(&s, data, n);
    bornc_sha256_final(&s, out);
}

static uint64_t read_le(const uint8_t *p, int n) {
    uint64_t v = 0;
    int i;
    for (i = n - 1; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

bornc_status_t bornc_weights_check(const void *image, size_t image_bytes, size_t expected_payload_bytes,
                                   const uint8_t expected_sha256[32], const void **payload) {
    const uint8_t *p = (const uint8_t *)image;
    uint8_t digest[32];
    if (!image || !payload || image_bytes < BORNC_WEIGHTS_HEADER_BYTES)
        return BORNC_ERR_WEIGHTS;
    if (memcmp(p, BORNC_WEIGHTS_MAGIC, 8) != 0 || read_le(p + 8, 4) != BORNC_WEIGHTS_VERSION ||
        read_le(p + 12, 4) != BORNC_WEIGHTS_HEADER_BYTES || read_le(p + 16, 8) != expected_payload_bytes ||
        image_bytes != BORNC_WEIGHTS_HEADER_BYTES + expected_payload_bytes || memcmp(p + 24, expected_sha256, 32) != 0)
        return BORNC_ERR_WEIGHTS;
    bornc_sha256(p + BORNC_WEIGHTS_HEADER_BYTES, expected_payload_bytes, digest);
    if (memcmp(digest, expected_sha256, 32) != 0)
        return BORNC_ERR_WEIGHTS;
    *payload = p + BORNC_WEIGHTS_HEADER_BYTES;
    return BORNC_OK;
}

/* ---- .npy (format 1.0/2.0, little endian, C order) ---- */
static const char *npy_descr(bornc_dtype_t t) {
    switch (t) {
    case BORNC_FLOAT32: return "<f4"; case BORNC_FLOAT64: return "<f8"; case BORNC_FLOAT16: return "<f2";
    case BORNC_INT8: return "|i1"; case BORNC_UINT8: return "|u1"; case BORNC_BOOL: return "|b1";
    case BORNC_INT16: return "<i2"; case BORNC_UINT16: return "<u2"; case BORNC_INT32: return "<i4";
    case BORNC_UINT32: return "<u4"; case BORNC_INT64: return "<i8"; case BORNC_UINT64: return "<u8";
    case BORNC_BFLOAT16: return "<V2";
    case BORNC_FLOAT8E4M3FN: case BORNC_FLOAT8E4M3FNUZ: case BORNC_FLOAT8E5M2: case BORNC_FLOAT8E5M2FNUZ:
    case BORNC_UINT4: case BORNC_INT4: case BORNC_FLOAT4E2M1: case BORNC_UINT2: case BORNC_INT2: case BORNC_FLOAT8E8M0:
        return "|u1";
    }
    return "";
}

static void shape_text(const bornc_tensor_info_t *info, char *buf, size_t cap) {
    size_t len = 0;
    int i;
    buf[len++] = '(';
    for (i = 0; i < info->rank && len + 24 < cap; i++)
        len += (size_t)sprintf(buf + len, "%lld%s", (long long)info->shape[i], info->rank == 1 ? "," : (i + 1 < info->rank ? ", " : ""));
    buf[len++] = ')';
    buf[len] = 0;
}

bornc_status_t bornc_npy_read(const char *path, const bornc_tensor_info_t *info, void *data) {
    FILE *f;
    uint8_t pre[10];
    char header[4096], want[256], shape[200];
    size_t hlen, got;
    int major;
    if (!path || !info || !data)
        return BORNC_ERR_ARGUMENT;
    f = fopen(path, "rb");
    if (!f)
        return BORNC_ERR_IO;
    if (fread(pre, 1, 8, f) != 8 || memcmp(pre, "\x93NUMPY", 6) != 0) {
        fclose(f);
        return BORNC_ERR_FORMAT;
    }
    major = pre[6];
    if (major == 1) {
        if (fread(pre + 8, 1, 2, f) != 2) { fclose(f); return BORNC_ERR_FORMAT; }
        hlen = (size_t)read_le(pre + 8, 2);
    } else {
        uint8_t l4[4];
        if (fread(l4, 1, 4, f) != 4) { fclose(f); return BORNC_ERR_FORMAT; }
        hlen = (size_t)read_le(l4, 4);
    }
    if (hlen >= sizeof header || fread(header, 1, hlen, f) != hlen) {
        fclose(f);
        return BORNC_ERR_FORMAT;
    }
    header[hlen] = 0;
    shape_text(info, shape, sizeof shape);
    sprintf(want, "'descr': '%s'", npy_descr(info->dtype));
    if (!strstr(header, want) || !strstr(header, "'fortran_order': False") || !strstr(header, shape)) {
        fclose(f);
        return BORNC_ERR_FORMAT;
    }
    got = fread(data, 1, info->nbytes, f);
    fclose(f);
    return got == info->nbytes ? BORNC_OK : BORNC_ERR_FORMAT;
}

bornc_status_t bornc_npy_write(const char *path, const bornc_tensor_info_t *info, const void *data) {
    FILE *f;
    char header[512], shape[200];
    size_t len, total;
    uint8_t pre[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, 0, 0};
    if (!path || !info || !data)
        return BORNC_ERR_ARGUMENT;
    shape_text(info, shape, sizeof shape);
    len = (size_t)sprintf(header, "{'descr': '%s', 'fortran_order': False, 'shape': %s, }", npy_descr(info->dtype), shape);
    total = 10 + len + 1;
    while (total % 64)
        header[len++] = ' ', total++;
    header[len++] = '\n';
    pre[8] = (uint8_t)(len & 0xff);
    pre[9] = (uint8_t)(len >> 8);
    f = fopen(path, "wb");
    if (!f)
        return BORNC_ERR_IO;
    if (fwrite(pre, 1, 10, f) != 10 || fwrite(header, 1, len, f) != len || fwrite(data, 1, info->nbytes, f) != info->nbytes) {
        fclose(f);
        return BORNC_ERR_IO;
    }
    return fclose(f) == 0 ? BORNC_OK : BORNC_ERR_IO;
}

/* ---- thread pool ---- */
static void bornc_run_share(bornc_task_fn fn, void *arg, int ntasks, int n, int w) {
    const int t0 = (int)((long long)ntasks * w / n), t1 = (int)((long long)ntasks * (w + 1) / n);
    int t;
    for (t = t0; t < t1; ++t) fn(arg, t, w);
}

#ifdef BORNC_NO_THREADS
int bornc_pool_start(int threads) {
    (void)threads;
    return 1;
}

void bornc_parallel(bornc_task_fn fn, void *arg, int ntasks, int threads) {
    (void)threads;
    bornc_run_share(fn, arg, ntasks, 1, 0);
}
#else
#include <pthread.h>
#include <time.h>

static long long bornc_now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)t.tv_sec * 1000000000LL + t.tv_nsec;
}

/* How long a worker polls for the next job before it sleeps: long enough to stay awake across the serial
 * kernels between two parallel ones of an inference (waking a sleeping thread costs tens of microseconds, more
 * in a VM), short enough not to burn a core between inferences. */
#define BORNC_SPIN_NS 2000000L

/* The job word: bits 16..31 the job number, bit 15 set once the caller has closed the job, bits 0..14 the
 * workers inside it. A worker joins an open job with a compare-and-swap, so the caller, once it has closed the
 * job, only waits for workers that are running one of its tasks, never for one still asleep. */
#define BORNC_JOB_CLOSED 0x8000u
#define BORNC_JOB_COUNT 0x7fffu

static struct {
    pthread_mutex_t lock;        /* guards started and the sleep */
    pthread_cond_t wake;
    int started;                 /* workers running, the caller not counted */
    unsigned job;                /* the job word above */
    int busy;                    /* a bornc_parallel call owns the pool */
    int sleepers;                /* workers waiting on `wake` */
    int next;                    /* the next task of the current job to claim */
    bornc_task_fn fn;
    void *arg;
    int ntasks, nthreads;
} bornc_pool = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, BORNC_JOB_CLOSED, 0, 0, 0, NULL, NULL, 0, 0 };

/* Atomics are relaxed operations ordered by explicit fences: on 32-bit Arm an acquire load would be ARMv8's
 * LDA, which the ARMv7 cores (and qemu's cortex-a15) do not have; fences are DMB on both. */
static unsigned bornc_job_word(void) {
    const unsigned v = __atomic_load_n(&bornc_pool.job, __ATOMIC_RELAXED);
    __atomic_thread_fence(__ATOMIC_ACQUIRE);
    return v;
}

static void bornc_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __asm__ __volatile__("pause");
#elif defined(__aarch64__) || (defined(__arm__) && defined(__ARM_ARCH) && __ARM_ARCH >= 7)
    __asm__ __volatile__("yield");
#endif
}

/* Claim and run tasks of the current job as worker w until none is left. */
static void bornc_claim(int w) {
    const int n = bornc_pool.ntasks;
    for (;;) {
        const int t = __atomic_fetch_add(&bornc_pool.next, 1, __ATOMIC_RELAXED);
        if (t >= n) return;
        bornc_pool.fn(bornc_pool.arg, t, w);
    }
}

/* An open job this worker has not joined yet (its number differs from `last`): join it. */
static int bornc_try_join(unsigned *last, int w) {
    unsigned v = bornc_job_word();
    while (!(v & BORNC_JOB_CLOSED) && (v >> 16) != *last) {
        if (w >= bornc_pool.nthreads) { *last = v >> 16; return 0; }
        if (__atomic_compare_exchange_n(&bornc_pool.job, &v, v + 1u, 0, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
            __atomic_thread_fence(__ATOMIC_ACQUIRE);
            *last = v >> 16;
            bornc_claim(w);
            __atomic_thread_fence(__ATOMIC_RELEASE);      /* this worker's outputs before it leaves */
            __atomic_fetch_sub(&bornc_pool.job, 1u, __ATOMIC_RELAXED);
            return 1;
        }
    }
    return 0;
}

static void *bornc_worker(void *p) {
    const int w = (int)(intptr_t)p;
    unsigned last = bornc_job_word() >> 16;
    for (;;) {
        const long long t0 = bornc_now_ns();
        int spins = 0, joined = 0;
        while (!(joined = bornc_try_join(&last, w))) {
            bornc_relax();
            if ((++spins & 1023) == 0 && bornc_now_ns() - t0 > BORNC_SPIN_NS) break;
        }
        if (joined) continue;
        pthread_mutex_lock(&bornc_pool.lock);
        __atomic_store_n(&bornc_pool.sleepers, bornc_pool.sleepers + 1, __ATOMIC_RELAXED);
        __atomic_thread_fence(__ATOMIC_SEQ_CST);
        while (((bornc_job_word() >> 16) == last || (bornc_job_word() & BORNC_JOB_CLOSED)))
            pthread_cond_wait(&bornc_pool.wake, &bornc_pool.lock);
        __atomic_store_n(&bornc_pool.sleepers, bornc_pool.sleepers - 1, __ATOMIC_RELAXED);
        pthread_mutex_unlock(&bornc_pool.lock);
    }
    return NULL;
}

int bornc_pool_start(int threads) {
    int n;
    if (threads > BORNC_MAX_THREADS) threads = BORNC_MAX_THREADS;
    pthread_mutex_lock(&bornc_pool.lock);
    while (bornc_pool.started + 1 < threads) {
        pthread_t t;
        pthread_attr_t attr;
        int ok;
        if (pthread_attr_init(&attr) != 0) break;
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        pthread_attr_setstacksize(&attr, (size_t)1 << 20);   /* kernels keep only small tiles on the stack */
        ok = pthread_create(&t, &attr, bornc_worker, (void *)(intptr_t)(bornc_pool.started + 1)) == 0;
        pthread_attr_destroy(&attr);
        if (!ok) break;
        __atomic_store_n(&bornc_pool.started, bornc_pool.started + 1, __ATOMIC_RELAXED);
    }
    n = bornc_pool.started + 1 < threads ? bornc_pool.started + 1 : threads;
    pthread_mutex_unlock(&bornc_pool.lock);
    return n < 1 ? 1 : n;
}

void bornc_parallel(bornc_task_fn fn, void *arg, int ntasks, int threads) {
    unsigned v;
    if (threads > 1 && ntasks > 1 && __atomic_load_n(&bornc_pool.started, __ATOMIC_RELAXED) + 1 < threads)
        bornc_pool_start(threads);                        /* workers start at the first job that wants them */
    if (threads <= 1 || ntasks <= 1 || __atomic_load_n(&bornc_pool.started, __ATOMIC_RELAXED) == 0
        || __atomic_exchange_n(&bornc_pool.busy, 1, __ATOMIC_RELAXED)) {
        bornc_run_share(fn, arg, ntasks, 1, 0);
        return;
    }
    __atomic_thread_fence(__ATOMIC_ACQUIRE);
    bornc_pool.fn = fn;
    bornc_pool.arg = arg;
    bornc_pool.ntasks = ntasks;
    bornc_pool.nthreads = threads;
    __atomic_store_n(&bornc_pool.next, 0, __ATOMIC_RELAXED);
    __atomic_thread_fence(__ATOMIC_RELEASE);              /* the job before it opens */
    v = __atomic_load_n(&bornc_pool.job, __ATOMIC_RELAXED);
    __atomic_store_n(&bornc_pool.job, ((v >> 16) + 1u) << 16, __ATOMIC_RELAXED);   /* open, nobody inside */
    __atomic_thread_fence(__ATOMIC_SEQ_CST);              /* the open job before reading sleepers (and in reverse there) */
    if (__atomic_load_n(&bornc_pool.sleepers, __ATOMIC_RELAXED) > 0) {
        pthread_mutex_lock(&bornc_pool.lock);
        pthread_cond_broadcast(&bornc_pool.wake);
        pthread_mutex_unlock(&bornc_pool.lock);
    }
    bornc_claim(0);
    v = __atomic_load_n(&bornc_pool.job, __ATOMIC_RELAXED);
    while (!__atomic_compare_exchange_n(&bornc_pool.job, &v, v | BORNC_JOB_CLOSED, 0, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
    }
    while (__atomic_load_n(&bornc_pool.job, __ATOMIC_RELAXED) & BORNC_JOB_COUNT) bornc_relax();
    __atomic_thread_fence(__ATOMIC_ACQ_REL);              /* the workers' outputs before ours, and before a new job */
    __atomic_store_n(&bornc_pool.busy, 0, __ATOMIC_RELAXED);
}
#endif
