/* bornrt.c: implementation of bornrt.h. See that header for the contracts. */
#include "bornrt.h"

#include <stdio.h>
#include <string.h>

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
    case BORNC_UINT4: case BORNC_INT4: case BORNC_FLOAT4E2M1: case BORNC_UINT2: case BORNC_INT2: return 1;
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
    case BORNC_UINT4: case BORNC_INT4: case BORNC_FLOAT4E2M1: case BORNC_UINT2: case BORNC_INT2: return "|u1";
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
