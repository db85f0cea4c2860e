/* test_runtime_ckpt.c — safetensors files and model checkpoints. */
#include "kn_rt_afile.h"
#include "kn_rt_ckpt.h"
#include "kn_rt_init.h"
#include "kn_safetensors.h"
#include "testlib.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>

static const kn_rt_param PARAMS[] = {
    {"fc.weight", 2, {3, 4}, 12, 0, KN_RT_TRAINABLE, KN_RT_INIT_KAIMING_UNIFORM, 4, 3, NULL},
    {"fc.bias", 1, {3}, 3, 12, KN_RT_TRAINABLE, KN_RT_INIT_BIAS_UNIFORM, 4, 3, NULL},
    {"bn.running_var", 1, {3}, 3, 15, KN_RT_BUFFER, KN_RT_INIT_ONES, 0, 0, NULL},
};
static const kn_rt_model MODEL = {.name = "tiny", .hash = "abc123", .target = "cpu",
                                  .n_params = 3, .params = PARAMS, .weights_numel = 18};

static char path[4096];
static char err[1024];

static const char *tmp_file(const char *tag, const char *name)
{
    snprintf(path, sizeof path, "%s/%s", kt_tmp_dir(tag), name);
    return path;
}

static int count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.' || (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))) n++;
    closedir(d);
    return n;
}

static void test_roundtrip(void)
{
    float w[3 * 4] = {0};
    for (int i = 0; i < 12; i++) w[i] = (float)i * 0.5f - 1;
    int64_t steps[2] = {7, -1};
    kn_st_tensor t[2] = {
        {"fc.weight", KN_RT_F32, 2, {3, 4}, 12, w},
        {"optim.step", KN_RT_I64, 1, {2}, 2, steps},
    };
    const char *mk[] = {"epoch", "seed"}, *mv[] = {"3", "42"};
    const char *p = tmp_file("st-rt", "a.safetensors");
    CU_ASSERT_FATAL(kn_st_write(p, t, 2, mk, mv, 2, err, sizeof err) == 0);
    kn_st_file f;
    CU_ASSERT_FATAL(kn_st_read(p, &f, err, sizeof err) == 0);
    CU_ASSERT_EQUAL(f.n, 2);
    const kn_st_tensor *a = kn_st_find(&f, "fc.weight"), *b = kn_st_find(&f, "optim.step");
    CU_ASSERT_FATAL(a && b);
    CU_ASSERT(a->dtype == KN_RT_F32 && a->rank == 2 && a->dims[0] == 3 && a->dims[1] == 4);
    CU_ASSERT(memcmp(a->data, w, sizeof w) == 0);
    CU_ASSERT(b->dtype == KN_RT_I64 && memcmp(b->data, steps, sizeof steps) == 0);
    CU_ASSERT_STRING_EQUAL(kn_st_meta(&f, "epoch"), "3");
    CU_ASSERT_STRING_EQUAL(kn_st_meta(&f, "seed"), "42");
    CU_ASSERT_PTR_NULL(kn_st_meta(&f, "nope"));
    /* Writing what was read gives identical bytes. */
    char p2[4200];
    snprintf(p2, sizeof p2, "%s.2", p);
    CU_ASSERT_FATAL(kn_st_write(p2, f.t, f.n, (const char *const *)f.meta_key,
                                (const char *const *)f.meta_val, f.n_meta, err, sizeof err) == 0);
    size_t l1, l2;
    char *b1 = kt_read_file(p, &l1), *b2 = kt_read_file(p2, &l2);
    CU_ASSERT(l1 == l2 && memcmp(b1, b2, l1) == 0);
    /* Header length is a multiple of 8 so the data section is aligned. */
    uint64_t h = 0;
    memcpy(&h, b1, 8);
    CU_ASSERT(h % 8 == 0 && b1[8] == '{');
    free(b1);
    free(b2);
    kn_st_free(&f);
}

static void test_python_layout(void)
{
    /* The exact bytes the reference `safetensors` package writes for
     * {"x": torch.tensor([1.0, 2.0])}: header JSON, space padding, data. */
    const char hdr[] = "{\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}";
    size_t jl = strlen(hdr), hl = (jl + 7) & ~(size_t)7;
    unsigned char buf[256] = {0};
    buf[0] = (unsigned char)hl;
    memcpy(buf + 8, hdr, jl);
    memset(buf + 8 + jl, ' ', hl - jl);
    float v[2] = {1, 2};
    memcpy(buf + 8 + hl, v, 8);
    const char *p = tmp_file("st-py", "x.safetensors");
    kt_write_file(p, buf, 8 + hl + 8);
    kn_st_file f;
    CU_ASSERT_FATAL(kn_st_read(p, &f, err, sizeof err) == 0);
    CU_ASSERT(f.n == 1 && ((float *)f.t[0].data)[1] == 2.0f);
    kn_st_free(&f);
}

static void test_model_ckpt(void)
{
    float w[18], back[18];
    kn_rt_init_weights(&MODEL, w, 9);
    const char *mk[] = {"epoch"}, *mv[] = {"1"};
    const char *p = tmp_file("ckpt", "m.safetensors");
    CU_ASSERT_FATAL(kn_rt_ckpt_save(&MODEL, w, p, NULL, 0, mk, mv, 1, err, sizeof err) == 0);
    memset(back, 0, sizeof back);
    CU_ASSERT_FATAL(kn_rt_ckpt_load(&MODEL, back, p, err, sizeof err) == 0);
    CU_ASSERT(memcmp(w, back, sizeof w) == 0);
    kn_st_file f;
    CU_ASSERT_FATAL(kn_st_read(p, &f, err, sizeof err) == 0);
    CU_ASSERT_STRING_EQUAL(kn_st_meta(&f, "model_hash"), "abc123");
    CU_ASSERT_STRING_EQUAL(kn_st_meta(&f, "model"), "tiny");
    CU_ASSERT_STRING_EQUAL(kn_st_meta(&f, "epoch"), "1");
    kn_st_free(&f);
}

static void test_atomic(void)
{
    char dir[4096], p[4200];
    snprintf(dir, sizeof dir, "%s", kt_tmp_dir("atomic"));
    snprintf(p, sizeof p, "%s/w.safetensors", dir);
    float w[18] = {0};
    CU_ASSERT_FATAL(kn_rt_ckpt_save(&MODEL, w, p, NULL, 0, NULL, NULL, 0, err, sizeof err) == 0);
    CU_ASSERT_EQUAL(count_entries(dir), 1); /* no temp file left behind */
    size_t l0;
    char *before = kt_read_file(p, &l0);

    /* A writer that dies before rename: the old file must be untouched. */
    kn_rt_afile a;
    CU_ASSERT_FATAL(kn_rt_afile_begin(&a, p, err, sizeof err) == 0);
    CU_ASSERT(kn_rt_afile_write(&a, "garbage", 7, err, sizeof err) == 0);
    fflush(a.f);
    size_t l1;
    char *during = kt_read_file(p, &l1);
    CU_ASSERT(l0 == l1 && memcmp(before, during, l0) == 0);
    float back[18];
    CU_ASSERT(kn_rt_ckpt_load(&MODEL, back, p, err, sizeof err) == 0);
    kn_rt_afile_abort(&a);
    CU_ASSERT_EQUAL(count_entries(dir), 1);
    free(before);
    free(during);

    /* Writing into a missing directory fails cleanly, naming the path. */
    snprintf(p, sizeof p, "%s/nodir/w.safetensors", dir);
    CU_ASSERT(kn_rt_ckpt_save(&MODEL, w, p, NULL, 0, NULL, NULL, 0, err, sizeof err) != 0);
    KT_ASSERT_CONTAINS(err, "nodir/w.safetensors");
}

/* Writes a checkpoint from tensors and returns kn_rt_ckpt_load's error. */
static const char *load_err(const kn_st_tensor *t, int n)
{
    const char *p = tmp_file("bad", "c.safetensors");
    CU_ASSERT_FATAL(kn_st_write(p, t, n, NULL, NULL, 0, err, sizeof err) == 0);
    float w[18];
    if (kn_rt_ckpt_load(&MODEL, w, p, err, sizeof err) == 0) return "";
    return err;
}

static void test_bad_checkpoints(void)
{
    static float z[64];
    kn_st_tensor ok[3] = {
        {"fc.weight", KN_RT_F32, 2, {3, 4}, 12, z},
        {"fc.bias", KN_RT_F32, 1, {3}, 3, z},
        {"bn.running_var", KN_RT_F32, 1, {3}, 3, z},
    };
    CU_ASSERT_STRING_EQUAL(load_err(ok, 3), "");
    const char *e = load_err(ok, 2);
    KT_ASSERT_CONTAINS(e, "c.safetensors: missing tensor 'bn.running_var' (expected f32[3])");

    kn_st_tensor extra[4] = {ok[0], ok[1], ok[2], {"fc2.weight", KN_RT_F32, 1, {5}, 5, z}};
    e = load_err(extra, 4);
    KT_ASSERT_CONTAINS(e, "unknown tensor 'fc2.weight' f32[5]");
    /* optim.* state is training's business, not an unknown tensor. */
    extra[3].name = "optim.fc.weight.m";
    CU_ASSERT_STRING_EQUAL(load_err(extra, 4), "");

    kn_st_tensor shape[3] = {{"fc.weight", KN_RT_F32, 2, {4, 3}, 12, z}, ok[1], ok[2]};
    e = load_err(shape, 3);
    KT_ASSERT_CONTAINS(e, "tensor 'fc.weight' has shape f32[4,3], expected f32[3,4]");
    kn_st_tensor dtype[3] = {ok[0], {"fc.bias", KN_RT_I64, 1, {3}, 3, z}, ok[2]};
    e = load_err(dtype, 3);
    KT_ASSERT_CONTAINS(e, "tensor 'fc.bias' has shape i64[3], expected f32[3]");

    /* Truncated: cut the last tensor's data short. */
    const char *p = tmp_file("trunc", "t.safetensors");
    CU_ASSERT_FATAL(kn_st_write(p, ok, 3, NULL, NULL, 0, err, sizeof err) == 0);
    size_t len;
    char *buf = kt_read_file(p, &len);
    kt_write_file(p, buf, len - 5);
    float w[18];
    CU_ASSERT(kn_rt_ckpt_load(&MODEL, w, p, err, sizeof err) != 0);
    KT_ASSERT_CONTAINS(err, "t.safetensors: truncated: tensor 'bn.running_var'");
    kt_write_file(p, buf, 20);
    CU_ASSERT(kn_rt_ckpt_load(&MODEL, w, p, err, sizeof err) != 0);
    KT_ASSERT_CONTAINS(err, "t.safetensors: truncated: header of");
    kt_write_file(p, buf, 3);
    CU_ASSERT(kn_rt_ckpt_load(&MODEL, w, p, err, sizeof err) != 0);
    KT_ASSERT_CONTAINS(err, "truncated");

    /* Garbage header: valid length, not JSON. */
    memset(buf + 8, '#', 16);
    kt_write_file(p, buf, len);
    CU_ASSERT(kn_rt_ckpt_load(&MODEL, w, p, err, sizeof err) != 0);
    KT_ASSERT_CONTAINS(err, "t.safetensors: bad header: not a JSON object");
    /* Random bytes: implausible header length. */
    memset(buf, 0x7f, 16);
    kt_write_file(p, buf, len);
    CU_ASSERT(kn_rt_ckpt_load(&MODEL, w, p, err, sizeof err) != 0);
    KT_ASSERT_CONTAINS(err, "bad header");
    free(buf);

    CU_ASSERT(kn_rt_ckpt_load(&MODEL, w, "/nonexistent/x.safetensors", err, sizeof err) != 0);
    KT_ASSERT_CONTAINS(err, "/nonexistent/x.safetensors: cannot open");
}

int main(void)
{
    CU_TestInfo tests[] = {
        {"safetensors round trip with metadata", test_roundtrip},
        {"reads the reference implementation's layout", test_python_layout},
        {"model checkpoint save/load", test_model_ckpt},
        {"atomic write and interrupted write", test_atomic},
        {"bad checkpoints give clear errors", test_bad_checkpoints},
        CU_TEST_INFO_NULL,
    };
    return kt_main("runtime_ckpt", tests);
}
