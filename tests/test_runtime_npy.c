/* test_runtime_npy.c — .npy reading and writing. */
#include "npy.h"
#include "testlib.h"

#include <stdio.h>
#include <stdlib.h>

static char err[1024];

static const char *data_file(const char *name)
{
    static char p[4096];
    snprintf(p, sizeof p, "%s/tests/data/runtime/%s", kt_src_dir(), name);
    return p;
}

static void test_roundtrip_f32(void)
{
    char p[4200];
    snprintf(p, sizeof p, "%s/a.npy", kt_tmp_dir("npy"));
    float v[2 * 3 * 4];
    for (int i = 0; i < 24; i++) v[i] = (float)i / 7;
    int64_t dims[3] = {2, 3, 4};
    CU_ASSERT_FATAL(kn_npy_write(p, KN_RT_F32, 3, dims, v, err, sizeof err) == 0);
    kn_npy a;
    CU_ASSERT_FATAL(kn_npy_read(p, &a, err, sizeof err) == 0);
    CU_ASSERT(a.dtype == KN_RT_F32 && a.rank == 3 && a.numel == 24);
    CU_ASSERT(a.dims[0] == 2 && a.dims[1] == 3 && a.dims[2] == 4);
    CU_ASSERT(memcmp(a.data, v, sizeof v) == 0);
    kn_npy_free(&a);
    /* NumPy aligns the data to 64 bytes. */
    size_t len;
    char *buf = kt_read_file(p, &len);
    CU_ASSERT((len - sizeof v) % 64 == 0);
    KT_ASSERT_CONTAINS(buf + 10, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3, 4), }");
    free(buf);
}

static void test_roundtrip_i64_and_scalars(void)
{
    char p[4200];
    const char *dir = kt_tmp_dir("npy64");
    snprintf(p, sizeof p, "%s/y.npy", dir);
    int64_t y[5] = {0, 9, -3, 1LL << 40, 7};
    int64_t d1[1] = {5};
    CU_ASSERT_FATAL(kn_npy_write(p, KN_RT_I64, 1, d1, y, err, sizeof err) == 0);
    size_t len;
    char *buf = kt_read_file(p, &len);
    KT_ASSERT_CONTAINS(buf + 10, "'shape': (5,), }");
    free(buf);
    kn_npy a;
    CU_ASSERT_FATAL(kn_npy_read(p, &a, err, sizeof err) == 0);
    CU_ASSERT(a.dtype == KN_RT_I64 && a.rank == 1 && a.dims[0] == 5);
    CU_ASSERT(memcmp(a.data, y, sizeof y) == 0);
    kn_npy_free(&a);

    float s = 3.5f;
    snprintf(p, sizeof p, "%s/s.npy", dir);
    CU_ASSERT_FATAL(kn_npy_write(p, KN_RT_F32, 0, NULL, &s, err, sizeof err) == 0);
    CU_ASSERT_FATAL(kn_npy_read(p, &a, err, sizeof err) == 0);
    CU_ASSERT(a.rank == 0 && a.numel == 1 && *(float *)a.data == 3.5f);
    kn_npy_free(&a);
}

static void test_numpy_files(void)
{
    kn_npy a;
    CU_ASSERT_FATAL(kn_npy_read(data_file("f8_2x3.npy"), &a, err, sizeof err) == 0);
    CU_ASSERT(a.dtype == KN_RT_F32 && a.rank == 2 && a.dims[0] == 2 && a.dims[1] == 3);
    CU_ASSERT(((float *)a.data)[5] == 1.25f);
    kn_npy_free(&a);
    CU_ASSERT_FATAL(kn_npy_read(data_file("i4_4.npy"), &a, err, sizeof err) == 0);
    CU_ASSERT(a.dtype == KN_RT_I64 && a.numel == 4);
    CU_ASSERT(((int64_t *)a.data)[1] == -2 && ((int64_t *)a.data)[3] == 2000000000);
    kn_npy_free(&a);
}

static void test_bad_npy(void)
{
    kn_npy a;
    CU_ASSERT(kn_npy_read(data_file("f4_fortran.npy"), &a, err, sizeof err) != 0);
    KT_ASSERT_CONTAINS(err, "f4_fortran.npy: fortran-order arrays are not supported");
    CU_ASSERT(kn_npy_read(data_file("u1_3.npy"), &a, err, sizeof err) != 0);
    KT_ASSERT_CONTAINS(err, "u1_3.npy: unsupported npy dtype '|u1'");
    CU_ASSERT(kn_npy_read("/nonexistent.npy", &a, err, sizeof err) != 0);
    KT_ASSERT_CONTAINS(err, "/nonexistent.npy: cannot open");

    const char *dir = kt_tmp_dir("npybad");
    char p[4200];
    snprintf(p, sizeof p, "%s/junk.npy", dir);
    kt_write_file(p, "hello world, not numpy", 22);
    CU_ASSERT(kn_npy_read(p, &a, err, sizeof err) != 0);
    KT_ASSERT_CONTAINS(err, "junk.npy: not an npy file");

    float v[6] = {0};
    int64_t dims[2] = {2, 3};
    snprintf(p, sizeof p, "%s/t.npy", dir);
    CU_ASSERT_FATAL(kn_npy_write(p, KN_RT_F32, 2, dims, v, err, sizeof err) == 0);
    size_t len;
    char *buf = kt_read_file(p, &len);
    kt_write_file(p, buf, len - 4);
    CU_ASSERT(kn_npy_read(p, &a, err, sizeof err) != 0);
    KT_ASSERT_CONTAINS(err, "t.npy: truncated npy data: 5 of 6 elements");
    kt_write_file(p, buf, 30);
    CU_ASSERT(kn_npy_read(p, &a, err, sizeof err) != 0);
    KT_ASSERT_CONTAINS(err, "truncated npy header");
    free(buf);
}

int main(void)
{
    CU_TestInfo tests[] = {
        {"f32 round trip, NumPy header layout", test_roundtrip_f32},
        {"i64 and scalar round trip", test_roundtrip_i64_and_scalars},
        {"reads NumPy's <f8 and <i4 with conversion", test_numpy_files},
        {"bad npy files give clear errors", test_bad_npy},
        CU_TEST_INFO_NULL,
    };
    return kt_main("runtime_npy", tests);
}
