/* test_taskuid.c - the pai user -> task uid map of the agent (taskuid.h). */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent/taskuid.h"
#include "common/buf.h"
#include "common/util.h"
#include "test.h"
#include "tmpbase.h"

static char *map_path(const char *name)
{
    return str_printf("%s/%s", base, name);
}

TEST(range_parses_lo_hi_and_refuses_the_rest)
{
    uid_t lo = 0, hi = 0;
    CHECK(taskuid_parse_range("200000-265535", &lo, &hi) == PAI_OK);
    CHECK(lo == 200000 && hi == 265535);
    CHECK(taskuid_parse_range("5-5", &lo, &hi) == PAI_OK && lo == 5 && hi == 5);
    CHECK(taskuid_parse_range("0-10", &lo, &hi) == PAI_E_INVALID); /* never root */
    CHECK(taskuid_parse_range("10-5", &lo, &hi) == PAI_E_INVALID);
    CHECK(taskuid_parse_range("10", &lo, &hi) == PAI_E_INVALID);
    CHECK(taskuid_parse_range("a-b", &lo, &hi) == PAI_E_INVALID);
    CHECK(taskuid_parse_range("1-4294967295", &lo, &hi) == PAI_E_INVALID);
}

TEST(users_get_distinct_stable_uids_kept_in_a_private_file)
{
    char *p = map_path("m1");
    taskuid_t *m = taskuid_new(p, 300000, 300009);
    uid_t a, b, a2;
    CHECK(taskuid_get(m, "alice", &a) == PAI_OK);
    CHECK(taskuid_get(m, "bob", &b) == PAI_OK);
    CHECK(taskuid_get(m, "alice", &a2) == PAI_OK);
    CHECK(a == a2 && a != b);
    CHECK(a >= 300000 && a <= 300009 && b >= 300000 && b <= 300009);
    taskuid_free(m);
    struct stat st;
    CHECK(stat(p, &st) == 0 && (st.st_mode & 0777) == 0600);
    /* a second agent sharing the file (or a restart) agrees */
    taskuid_t *m2 = taskuid_new(p, 300000, 300009);
    CHECK(taskuid_get(m2, "bob", &a2) == PAI_OK && a2 == b);
    taskuid_free(m2);
    free(p);
}

TEST(two_agents_sharing_a_map_never_hand_out_one_uid_twice)
{
    char *p = map_path("m2");
    taskuid_t *x = taskuid_new(p, 400000, 400003), *y = taskuid_new(p, 400000, 400003);
    uid_t u[4];
    const char *names[] = {"u1", "u2", "u3", "u4"};
    for (int i = 0; i < 4; i++)
        CHECK(taskuid_get(i % 2 ? x : y, names[i], &u[i]) == PAI_OK);
    for (int i = 0; i < 4; i++)
        for (int j = i + 1; j < 4; j++)
            CHECK(u[i] != u[j]);
    uid_t z;
    CHECK(taskuid_get(x, "u5", &z) == PAI_E_NO_QUOTA); /* the range is full */
    CHECK(taskuid_get(y, "u1", &z) == PAI_OK && z == u[0]);
    taskuid_free(x);
    taskuid_free(y);
    free(p);
}

TEST(bad_names_and_torn_lines_are_refused_or_skipped)
{
    char *p = map_path("m3");
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    CHECK(fd >= 0 && write(fd, "500001 carol\n5000", 17) == 17);
    close(fd);
    taskuid_t *m = taskuid_new(p, 500000, 500009);
    uid_t u;
    CHECK(taskuid_get(m, "../x", &u) == PAI_E_INVALID);
    CHECK(taskuid_get(m, "a b", &u) == PAI_E_INVALID);
    CHECK(taskuid_get(m, "", &u) == PAI_E_INVALID);
    CHECK(taskuid_get(m, "carol", &u) == PAI_OK && u == 500001);
    CHECK(taskuid_get(m, "dave", &u) == PAI_OK && u != 500001);
    taskuid_free(m);
    /* dave's line did not join the torn one */
    taskuid_t *m2 = taskuid_new(p, 500000, 500009);
    uid_t d;
    CHECK(taskuid_get(m2, "dave", &d) == PAI_OK && d == u);
    taskuid_free(m2);
    buf_t b;
    buf_init(&b, 4096);
    CHECK(buf_read_file(&b, p) == PAI_OK && strstr(buf_str(&b), "\n5000\n") != NULL);
    buf_free(&b);
    free(p);
}

__attribute__((constructor)) static void init(void)
{
    tmpbase_make("/tmp/pai-test-taskuid-XXXXXX");
}

TEST(a_server_offset_maps_to_lo_plus_offset_without_the_map)
{
    char *p = map_path("m-off");
    taskuid_t *m = taskuid_new(p, 300000, 300009);
    uid_t u = 0;
    CHECK(taskuid_at(m, 0, &u) == PAI_OK && u == 300000);
    CHECK(taskuid_at(m, 9, &u) == PAI_OK && u == 300009);
    CHECK(taskuid_at(m, 10, &u) == PAI_E_NO_QUOTA); /* past hi: widen the range */
    CHECK(taskuid_at(m, -1, &u) == PAI_E_NO_QUOTA);
    struct stat st;
    CHECK(stat(p, &st) != 0); /* the map is not touched */
    taskuid_free(m);
    free(p);
}

/* dir made with mode (set whatever the umask); its path (malloc'ed). */
static char *dir_at(const char *rel, mode_t mode)
{
    char *p = str_printf("%s/%s", base, rel);
    CHECK(mkdir(p, mode) == 0 && chmod(p, mode) == 0);
    return p;
}

TEST(a_work_dir_under_a_dir_others_may_not_pass_is_closed_to_task_uids)
{
    char closed[1024] = "";
    mode_t mode = 0;
    CHECK(chmod(base, 0711) == 0);
    char *open1 = dir_at("open", 0755), *open2 = dir_at("open/work", 0711);
    char *shut = dir_at("shut", 0700), *shut2 = dir_at("shut/deeper", 0750);
    char *work = dir_at("shut/deeper/work", 0711);
    CHECK(taskuid_path_open(open2, closed, sizeof(closed), &mode));
    CHECK(!taskuid_path_open(work, closed, sizeof(closed), &mode));
    CHECK_STR_EQ(closed, shut); /* the first on the way down, not the nearest */
    CHECK_INT_EQ(mode, 0700);
    /* as written: "//", a trailing '/', relative to the current dir */
    char *odd = str_printf("%s//shut/deeper//work/", base);
    CHECK(!taskuid_path_open(odd, closed, sizeof(closed), &mode));
    CHECK_STR_EQ(closed, shut);
    CHECK(chdir(base) == 0);
    CHECK(taskuid_path_open("open/work", closed, sizeof(closed), &mode));
    CHECK(!taskuid_path_open("shut/deeper/work", closed, sizeof(closed), &mode));
    CHECK_STR_EQ(closed, shut);
    /* through a link: the dirs it leads through count */
    char *link = str_printf("%s/link", base);
    CHECK(symlink(work, link) == 0);
    CHECK(!taskuid_path_open(link, closed, sizeof(closed), &mode));
    CHECK_STR_EQ(closed, shut);
    /* the work dir itself counts too; opened, nothing is said */
    CHECK(chmod(open2, 0700) == 0);
    CHECK(!taskuid_path_open(open2, closed, sizeof(closed), &mode));
    CHECK_STR_EQ(closed, open2);
    CHECK(chmod(open2, 0711) == 0 && chmod(shut, 0711) == 0);
    CHECK(!taskuid_path_open(work, closed, sizeof(closed), &mode));
    CHECK_STR_EQ(closed, shut2); /* the next one down */
    CHECK_INT_EQ(mode, 0750);
    CHECK(chmod(shut2, 0751) == 0);
    CHECK(taskuid_path_open(work, closed, sizeof(closed), &mode));
    CHECK(taskuid_path_open(link, closed, sizeof(closed), &mode));
    CHECK(taskuid_path_open("/nonexistent/x", closed, sizeof(closed), &mode));
    free(open1);
    free(open2);
    free(shut);
    free(shut2);
    free(work);
    free(odd);
    free(link);
}

RUN_TESTS(range_parses_lo_hi_and_refuses_the_rest,
          users_get_distinct_stable_uids_kept_in_a_private_file,
          two_agents_sharing_a_map_never_hand_out_one_uid_twice,
          bad_names_and_torn_lines_are_refused_or_skipped,
          a_server_offset_maps_to_lo_plus_offset_without_the_map,
          a_work_dir_under_a_dir_others_may_not_pass_is_closed_to_task_uids)
