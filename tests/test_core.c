/* core: hex and base64 codecs, Hamming distance, error records. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <string.h>
#include <stdlib.h>

#include "nhash/core.h"

/* The example nnhash.py / Apple's Vision API pair from neuralhash.md. */
static void test_hex_base64_known_pair(void **state)
{
    (void)state;
    uint8_t h[12], b[12];
    assert_int_equal(nh_hex_decode("74afaa222cbf971c26dd40cb", 24, h, 12), NH_OK);
    char b64[17];
    nh_base64_encode(h, 12, b64);
    assert_string_equal(b64, "dK+qIiy/lxwm3UDL");
    size_t n = 0;
    assert_int_equal(nh_base64_decode("dK+qIiy/lxwm3UDL", 16, b, sizeof b, &n), NH_OK);
    assert_int_equal(n, 12);
    assert_memory_equal(h, b, 12);
    char hex[25];
    nh_hex_encode(b, 12, hex);
    assert_string_equal(hex, "74afaa222cbf971c26dd40cb");
}

/* RFC 4648 section 10 test vectors. */
static void test_base64_rfc4648(void **state)
{
    (void)state;
    static const char *plain[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
    static const char *enc[] = {"", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
    for (int i = 0; i < 7; i++) {
        char out[16];
        nh_base64_encode((const uint8_t *)plain[i], strlen(plain[i]), out);
        assert_string_equal(out, enc[i]);
        uint8_t back[8];
        size_t n = 99;
        assert_int_equal(nh_base64_decode(enc[i], strlen(enc[i]), back, sizeof back, &n), NH_OK);
        assert_int_equal(n, strlen(plain[i]));
        assert_memory_equal(back, plain[i], n);
    }
}

static void test_codec_rejects(void **state)
{
    (void)state;
    uint8_t b[16];
    size_t n;
    assert_int_equal(nh_hex_decode("74afaa222cbf971c26dd40c", 23, b, 12), NH_ERR_INVALID);
    assert_int_equal(nh_hex_decode("74afaa222cbf971c26dd40cg", 24, b, 12), NH_ERR_INVALID);
    assert_int_equal(nh_hex_decode("74AFAA222CBF971C26DD40CB", 24, b, 12), NH_OK);
    assert_int_equal(nh_base64_decode("Zg=", 3, b, sizeof b, &n), NH_ERR_INVALID);
    assert_int_equal(nh_base64_decode("Z===", 4, b, sizeof b, &n), NH_ERR_INVALID);
    assert_int_equal(nh_base64_decode("Zg=a", 4, b, sizeof b, &n), NH_ERR_INVALID);
    assert_int_equal(nh_base64_decode("Zh==", 4, b, sizeof b, &n), NH_ERR_INVALID); /* non-canonical */
    assert_int_equal(nh_base64_decode("Zm9v!mFy", 8, b, sizeof b, &n), NH_ERR_INVALID);
    assert_int_equal(nh_base64_decode("Zm9vYmFy", 8, b, 5, &n), NH_ERR_INVALID); /* overflow */
}

static void test_hex_roundtrip_random(void **state)
{
    (void)state;
    srand(7);
    for (int t = 0; t < 1000; t++) {
        uint8_t h[32], back[32];
        size_t n = (size_t)(rand() % 32) + 1;
        for (size_t i = 0; i < n; i++)
            h[i] = (uint8_t)rand();
        char hex[65], b64[64];
        nh_hex_encode(h, n, hex);
        assert_int_equal(strlen(hex), 2 * n);
        assert_int_equal(nh_hex_decode(hex, 2 * n, back, n), NH_OK);
        assert_memory_equal(h, back, n);
        nh_base64_encode(h, n, b64);
        size_t m = 0;
        assert_int_equal(nh_base64_decode(b64, strlen(b64), back, sizeof back, &m), NH_OK);
        assert_int_equal(m, n);
        assert_memory_equal(h, back, n);
    }
}

/* Hamming distance against a bit-by-bit count; bit order is MSB first. */
static void test_hamming(void **state)
{
    (void)state;
    srand(11);
    for (int t = 0; t < 500; t++) {
        uint8_t a[32], b[32];
        size_t n = (size_t)(rand() % 32) + 1;
        for (size_t i = 0; i < n; i++) {
            a[i] = (uint8_t)rand();
            b[i] = (uint8_t)rand();
        }
        unsigned want = 0;
        for (unsigned i = 0; i < n * 8; i++)
            want += nh_hash_bit(a, i) != nh_hash_bit(b, i);
        assert_int_equal(nh_hamming(a, b, n), want);
    }
    uint8_t x[12] = {0x80};
    assert_int_equal(nh_hash_bit(x, 0), 1);
    assert_int_equal(nh_hash_bit(x, 1), 0);
    uint64_t u[2] = {~0ULL, 1}, v[2] = {0, 0};
    assert_int_equal(nh_hamming_u64(u, v, 2), 65);
}

static void test_error_record(void **state)
{
    (void)state;
    nh_error e;
    nh_error_clear(&e);
    assert_int_equal(e.status, NH_OK);
    assert_int_equal(nh_error_set(&e, NH_ERR_CL, NH_FOREIGN_CL, -5, "a.jpg", "upload %d", 3),
                     NH_ERR_CL);
    char buf[256];
    nh_error_format(&e, buf, sizeof buf);
    assert_string_equal(buf, "a.jpg: upload 3 (CL_OUT_OF_RESOURCES, -5)");
    nh_error_set(&e, NH_ERR_IO, NH_FOREIGN_ERRNO, 2, "b.png", "cannot open\n");
    nh_error_format(&e, buf, sizeof buf);
    assert_string_equal(buf, "b.png: cannot open (errno 2: No such file or directory)");
    assert_int_equal(nh_error_set(NULL, NH_ERR_DB, NH_FOREIGN_MDB, -30792, NULL, "x"), NH_ERR_DB);
    assert_string_equal(nh_status_name(NH_ERR_TOO_LARGE), "too_large");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hex_base64_known_pair), cmocka_unit_test(test_base64_rfc4648),
        cmocka_unit_test(test_codec_rejects),         cmocka_unit_test(test_hex_roundtrip_random),
        cmocka_unit_test(test_hamming),               cmocka_unit_test(test_error_record),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
