#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include "nhash/decode.h"
static void test_placeholder_init(void **state)
{
    (void)state;
    assert_int_equal(nh_decode_init(NULL, NULL), NH_OK);
}
int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_placeholder_init)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
