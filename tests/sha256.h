/* SHA-256 (FIPS 180-4) for comparing tensors with digests written by Python's hashlib. */
#ifndef NH_TEST_SHA256_H
#define NH_TEST_SHA256_H
#include <stddef.h>
#include <stdint.h>
void nh_test_sha256(const void *data, size_t len, uint8_t out[32]);
void nh_test_sha256_hex(const void *data, size_t len, char out[65]);
#endif
