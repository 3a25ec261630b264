/* test_agent_accel.c - accelerators beyond NVIDIA in the agent: AMD GPUs
 * from a fake KFD/DRM sysfs tree (order, model, memory, PCI bus, UUID,
 * XGMI topology, /dev/kfd, figures, RAS errors, a lost GPU), generic
 * device classes (spec errors, natural order, shared nodes), and each
 * vendor's task env and container paths. */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent/gpu.h"
#include "common/fs.h"
#include "common/util.h"
#include "test.h"

static char *tmp(void)
{
    char *d = xstrdup("/tmp/pai-test-accel-XXXXXX");
    CHECK(mkdtemp(d) != NULL);
    return d;
}

static void rm_rf(char *d)
{
    char *cmd = str_printf("rm -rf %s", d);
    CHECK(system(cmd) == 0);
    free(cmd);
    free(d);
}

static void put(const char *dir, const char *rel, const char *text)
{
    char *p = str_printf("%s/%s", dir, rel);
    CHECK(fs_write_atomic(p, text, strlen(text), 0644) == PAI_OK);
    free(p);
}

TEST(amd_gpus_come_from_the_kfd_topology_in_node_order)
{
    char *root = tmp();
    gpu_set_t s;
    CHECK(gpu_amd_discover(root, &s) == PAI_E_UNAVAILABLE); /* no KFD */
    CHECK(gpu_amd_sim_tree(root, 3, "AMD Instinct MI210") == PAI_OK);
    CHECK(gpu_amd_discover(root, &s) == PAI_OK);
    CHECK(s.vendor == GPU_VENDOR_AMD && s.simulated && s.n == 3);
    CHECK_STR_EQ(s.gpus[0].model, "AMD Instinct MI210");
    CHECK(s.gpus[2].index == 2 && s.gpus[2].memory_mb == 65536);
    CHECK_STR_EQ(s.gpus[1].uuid, "GPU-5a17c0de00000001");
    CHECK_STR_EQ(s.gpus[1].pci_bus, "0000:11:00.0");
    CHECK(str_has_prefix(s.gpus[2].dev, root) &&
          strcmp(gpu_container_path(s.gpus[2].dev), "/dev/dri/renderD130") == 0);
    CHECK(s.nshared == 1 && strcmp(gpu_container_path(s.shared[0]), "/dev/kfd") == 0);
    CHECK(s.has_topo && s.topo[0][1] == 10 && s.topo[2][0] == 10 && s.topo[1][1] == 0);
    /* a GPU without product_name is named by its gfx target; no XGMI: PCIe */
    char *p = str_printf("%s/sys/class/drm/renderD128/device/product_name", root);
    CHECK(unlink(p) == 0);
    free(p);
    p = str_printf("%s/sys/class/kfd/kfd/topology/nodes/1/io_links", root);
    char *cmd = str_printf("rm -rf %s", p);
    CHECK(system(cmd) == 0);
    free(cmd);
    free(p);
    CHECK(gpu_amd_discover(root, &s) == PAI_OK);
    CHECK_STR_EQ(s.gpus[0].model, "AMD gfx90a");
    CHECK(s.topo[0][1] == 10); /* node 2 still links to node 1 */
    rm_rf(root);
}

TEST(amd_gpu_figures_ras_errors_and_loss_from_sysfs)
{
    char *root = tmp();
    gpu_set_t s;
    CHECK(gpu_amd_sim_tree(root, 2, NULL) == PAI_OK && gpu_amd_discover(root, &s) == PAI_OK);
    CHECK_STR_EQ(s.gpus[0].model, "AMD Instinct MI250X");
    put(root, "sys/class/drm/renderD129/device/gpu_busy_percent", "73\n");
    put(root, "sys/class/drm/renderD129/device/hwmon/hwmon0/temp1_input", "51500\n");
    gpu_sample_t x;
    gpu_amd_sample(&s.gpus[1], &x);
    CHECK(x.ok && x.util == 73 && x.mem_util == 0 && x.temp_c == 51.5);
    CHECK(x.ecc_double == 0 && x.ecc_single == 0 && gpu_sample_healthy(&x));
    put(root, "sys/class/drm/renderD129/device/ras/umc_err_count", "ue: 2\nce: 7\n");
    gpu_amd_sample(&s.gpus[1], &x);
    CHECK(x.ecc_double == 2 && x.ecc_single == 7 && !gpu_sample_healthy(&x));
    char *p = str_printf("%s/dev/dri/renderD128", root);
    CHECK(unlink(p) == 0);
    free(p);
    gpu_amd_sample(&s.gpus[0], &x);
    CHECK(!x.ok && !gpu_sample_healthy(&x)); /* the render node is gone */
    rm_rf(root);
}

TEST(amd_task_env_names_gpus_by_uuid_for_rocr_and_host_index_for_openpai)
{
    char *root = tmp();
    gpu_set_t s;
    CHECK(gpu_amd_sim_tree(root, 4, NULL) == PAI_OK && gpu_amd_discover(root, &s) == PAI_OK);
    char *env[4] = {0};
    const int two[] = {1, 3};
    CHECK(gpu_task_env(&s, two, 2, false, env) == 3);
    CHECK_STR_EQ(env[0], "HIP_VISIBLE_DEVICES=0,1");
    CHECK_STR_EQ(env[1], "ROCR_VISIBLE_DEVICES=GPU-5a17c0de00000001,GPU-5a17c0de00000003");
    CHECK_STR_EQ(env[2], "PAI_AMD_VISIBLE_DEVICES=1,3");
    for (int i = 0; i < 3; i++)
        free(env[i]);
    /* GPUs without a unique_id: host indices for a process, ordinals in a container */
    str_copy(s.gpus[1].uuid, "AMD-node-2", sizeof(s.gpus[1].uuid));
    CHECK(gpu_task_env(&s, two, 2, false, env) == 3);
    CHECK_STR_EQ(env[0], "HIP_VISIBLE_DEVICES=1,3");
    CHECK_STR_EQ(env[1], "ROCR_VISIBLE_DEVICES=1,3");
    for (int i = 0; i < 3; i++)
        free(env[i]);
    CHECK(gpu_task_env(&s, two, 2, true, env) == 3);
    CHECK_STR_EQ(env[0], "HIP_VISIBLE_DEVICES=0,1");
    CHECK_STR_EQ(env[1], "ROCR_VISIBLE_DEVICES=0,1");
    for (int i = 0; i < 3; i++)
        free(env[i]);
    CHECK(gpu_task_env(&s, NULL, 0, false, env) == 3); /* a CPU task sees no GPU */
    CHECK_STR_EQ(env[0], "HIP_VISIBLE_DEVICES=-1");
    CHECK_STR_EQ(env[2], "PAI_AMD_VISIBLE_DEVICES=");
    for (int i = 0; i < 3; i++)
        free(env[i]);
    gpu_set_t nv;
    gpu_simulate(&nv, 2, "A100", "n");
    CHECK(gpu_task_env(&nv, two, 1, false, env) == 0); /* the server sends NVIDIA's */
    rm_rf(root);
}

TEST(device_class_spec_glob_natural_order_and_env)
{
    char *d = tmp(), err[160] = "";
    const char *names[] = {"fpga10", "fpga2", "fpga0", "other"};
    for (size_t i = 0; i < 4; i++)
        put(d, names[i], "");
    gpu_set_t s;
    char *spec = str_printf("name=fpga,sku=U250,paths=%s/fpga*,env=FPGA_VISIBLE_DEVICES,"
                            "shared=/dev/xclmgmt:/dev/xocl",
                            d);
    CHECK(gpu_class_discover(spec, "n1", &s, err, sizeof(err)) == PAI_OK);
    CHECK(s.vendor == GPU_VENDOR_CLASS && s.n == 3 && s.simulated);
    CHECK(str_has_prefix(s.gpus[0].dev, d) && strstr(s.gpus[0].dev, "/fpga0"));
    CHECK(strstr(s.gpus[1].dev, "/fpga2") && strstr(s.gpus[2].dev, "/fpga10"));
    CHECK_STR_EQ(s.gpus[2].model, "U250");
    CHECK_STR_EQ(s.class_name, "fpga");
    CHECK_STR_EQ(s.gpus[1].uuid, "fpga-n1-1");
    CHECK(s.nshared == 2 && strcmp(s.shared[1], "/dev/xocl") == 0);
    char *env[4] = {0};
    const int held[] = {0, 2};
    CHECK(gpu_task_env(&s, held, 2, true, env) == 1);
    CHECK_STR_EQ(env[0], "FPGA_VISIBLE_DEVICES=0,2");
    free(env[0]);
    free(spec);
    static const char *const bad[] = {
        "name=fpga,sku=U250,paths=/dev/fpga*",                    /* no env */
        "name=fpga,sku=U250,paths=/dev/fpga*,env=bad-name",       /* not a variable */
        "name=fpga,sku=U250,paths=/dev/fpga*,env=X,colour=blue",  /* unknown key */
        "name=fpga,sku=U250,paths=/dev/fpga*,env=X,justakeyword", /* no '=' */
    };
    for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
        err[0] = '\0';
        CHECK(gpu_class_discover(bad[i], "n1", &s, err, sizeof(err)) == PAI_E_INVALID);
        CHECK(strstr(err, "--device-class") != NULL);
    }
    /* nothing matches: a node without devices, not an error */
    CHECK(gpu_class_discover("name=f,sku=S,paths=/nonexistent/x*,env=F", "n", &s, err,
                             sizeof(err)) == PAI_OK &&
          s.n == 0);
    CHECK_STR_EQ(gpu_container_path("/dev/fpga0"), "/dev/fpga0");
    CHECK_STR_EQ(gpu_container_path("/opt/x"), "/opt/x");
    rm_rf(d);
}

RUN_TESTS(amd_gpus_come_from_the_kfd_topology_in_node_order,
          amd_gpu_figures_ras_errors_and_loss_from_sysfs,
          amd_task_env_names_gpus_by_uuid_for_rocr_and_host_index_for_openpai,
          device_class_spec_glob_natural_order_and_env)
