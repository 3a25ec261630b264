/* test_config.c - server options: defaults, file < env < flags, bounds, errors. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>

#include "server/config.h"
#include "test.h"

static pai_err_t load(int argc, char **argv, server_config_t **cfg, char *err)
{
    return server_config_load(argc, argv, cfg, err, 512);
}

TEST(defaults_are_documented_values)
{
    char *argv[] = {"server"};
    server_config_t *cfg = NULL;
    char err[512] = "";
    CHECK(load(1, argv, &cfg, err) == PAI_OK);
    if (!cfg)
        return;
    CHECK_INT_EQ(cfg->port, 9186);
    CHECK_INT_EQ(cfg->token_ttl, 7 * 86400);
    CHECK_STR_EQ(cfg->listen_addr, "127.0.0.1");
    CHECK_STR_EQ(cfg->admin_username, "admin");
    CHECK(json_array_size(cfg->storages) == 0);
    char *url = server_config_store_url(cfg);
    CHECK_STR_EQ(url, "sqlite:./pai-data/pai.db");
    free(url);
    server_config_free(cfg);
}

TEST(file_then_env_then_flags)
{
    char path[] = "/tmp/pai-test-cfg-XXXXXX";
    int fd = mkstemp(path);
    const char *y = "port: 1000\ntoken_ttl: 3600\nlog_level: debug\n"
                    "storages:\n  - name: s1\n    default: true\n";
    CHECK(fd >= 0 && write(fd, y, strlen(y)) == (ssize_t)strlen(y));
    close(fd);
    setenv("PAI_TOKEN_TTL", "7200", 1);
    char *argv[] = {"server", "--config", path, "--port=2000", "--listen", "0.0.0.0:3000"};
    server_config_t *cfg = NULL;
    char err[512] = "";
    CHECK(load(6, argv, &cfg, err) == PAI_OK);
    unsetenv("PAI_TOKEN_TTL");
    unlink(path);
    if (!cfg) {
        fprintf(stderr, "  %s\n", err);
        return;
    }
    CHECK_INT_EQ(cfg->port, 3000);         /* flags in order: --listen came last */
    CHECK_INT_EQ(cfg->token_ttl, 7200);    /* env over file */
    CHECK_STR_EQ(cfg->log_level, "debug"); /* file over default */
    CHECK_STR_EQ(cfg->listen_addr, "0.0.0.0");
    CHECK_STR_EQ(json_string_value(json_object_get(json_array_get(cfg->storages, 0), "name")),
                 "s1");
    CHECK(json_is_true(json_object_get(json_array_get(cfg->storages, 0), "default")));
    server_config_free(cfg);
}

TEST(bad_values_are_refused_with_the_option_name)
{
    struct {
        int argc;
        char *argv[4];
        const char *want;
    } cases[] = {
        {3, {"server", "--port", "70000"}, "port"},
        {3, {"server", "--token-ttl", "1x"}, "token_ttl"},
        {3, {"server", "--no-such", "1"}, "--no-such"},
        {2, {"server", "--port"}, "needs a value"},
        {2, {"server", "stray"}, "stray"},
        {3, {"server", "--log-level", "loud"}, "log_level"},
        {3, {"server", "--listen", "nocolon"}, "ADDR:PORT"},
        {3, {"server", "--config", "/nonexistent/pai.yaml"}, "/nonexistent/pai.yaml"},
        {3, {"server", "--storages", "x"}, "config file"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        server_config_t *cfg = NULL;
        char err[512] = "";
        CHECK(load(cases[i].argc, cases[i].argv, &cfg, err) != PAI_OK);
        CHECK(cfg == NULL);
        CHECK_STR_CONTAINS(err, cases[i].want);
    }
}

TEST(config_file_errors_name_file_line_and_column)
{
    char path[] = "/tmp/pai-test-cfg-XXXXXX";
    int fd = mkstemp(path);
    const char *y = "port: 1\n\ntokn_ttl: 5\n";
    CHECK(fd >= 0 && write(fd, y, strlen(y)) == (ssize_t)strlen(y));
    close(fd);
    char *argv[] = {"server", "--config", path};
    server_config_t *cfg = NULL;
    char err[512] = "";
    CHECK(load(3, argv, &cfg, err) == PAI_E_INVALID);
    CHECK_STR_CONTAINS(err, ":3:1: unknown option 'tokn_ttl'");
    fd = open(path, O_WRONLY | O_TRUNC);
    const char *y2 = "storages:\n  - type: nfs\n";
    CHECK(fd >= 0 && write(fd, y2, strlen(y2)) == (ssize_t)strlen(y2));
    close(fd);
    CHECK(load(3, argv, &cfg, err) == PAI_E_INVALID);
    CHECK_STR_CONTAINS(err, "storages[0]");
    fd = open(path, O_WRONLY | O_TRUNC);
    const char *y3 = "port: [1, 2]\n";
    CHECK(fd >= 0 && write(fd, y3, strlen(y3)) == (ssize_t)strlen(y3));
    close(fd);
    CHECK(load(3, argv, &cfg, err) == PAI_E_INVALID);
    CHECK_STR_CONTAINS(err, "expected an integer");
    fd = open(path, O_WRONLY | O_TRUNC);
    const char *y4 = "port: 1000\nlog_level: info\nport: 2000\n";
    CHECK(fd >= 0 && write(fd, y4, strlen(y4)) == (ssize_t)strlen(y4));
    close(fd);
    CHECK(load(3, argv, &cfg, err) == PAI_E_INVALID);
    CHECK_STR_CONTAINS(err, ":3:1: duplicate key 'port'");
    unlink(path);
}

RUN_TESTS(defaults_are_documented_values, file_then_env_then_flags,
          bad_values_are_refused_with_the_option_name, config_file_errors_name_file_line_and_column)
