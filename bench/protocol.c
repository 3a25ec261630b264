/*
 * bench/protocol.c - job protocol throughput on one core.
 *
 * For OpenPAI's hello-world job and its 500-task MNIST job (both from
 * microsoft/pai, MIT, (c) Microsoft Corporation; embedded below), measures
 * jobs per second for:
 *   parse+validate+render  job_parse, then every task's rendered script
 *                          (what submission plus dispatch costs),
 *   +json                  the same plus job_to_json (the REST submit path
 *                          stores the job config as JSON),
 * each for about PAI_BENCH_SECONDS (default 2) on the calling thread.  Rates
 * are per second of the thread's CPU time (one core), with the wall-clock
 * rate alongside.  Prints the CPU model and the figures; asserts nothing.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/util.h"
#include "protocol/job.h"

static const char hello_world[] =
    "protocolVersion: 2\n"
    "name: hello-world-job\n"
    "type: job\n"
    "jobRetryCount: 0\n"
    "prerequisites:\n"
    "  - type: dockerimage\n"
    "    uri: 'openpai/standard:python_3.6-tensorflow_1.15.0-gpu'\n"
    "    name: docker_image_0\n"
    "taskRoles:\n"
    "  taskrole:\n"
    "    instances: 1\n"
    "    completion:\n"
    "      minFailedInstances: 1\n"
    "      minSucceededInstances: -1\n"
    "    taskRetryCount: 0\n"
    "    dockerImage: docker_image_0\n"
    "    resourcePerInstance:\n"
    "      gpu: 1\n"
    "      cpu: 1\n"
    "      memoryMB: 6500\n"
    "    commands:\n"
    "      - 'git clone https://github.com/tensorflow/models'\n"
    "      - cd models\n"
    "      - git reset --hard 62bf6fc0bb2b41a4fb851909c132647a7e0774b0\n"
    "      - cd research/slim\n"
    "      - >-\n"
    "        python download_and_convert_data.py --dataset_name=cifar10\n"
    "        --dataset_dir=/tmp/data\n"
    "      - >-\n"
    "        python train_image_classifier.py --dataset_name=cifar10\n"
    "        --dataset_dir=/tmp/data --max_number_of_steps=1000\n"
    "defaults:\n"
    "  virtualCluster: default\n"
    "extras:\n"
    "  com.microsoft.pai.runtimeplugin:\n"
    "    - plugin: ssh\n"
    "      parameters:\n"
    "        jobssh: true\n";

static const char mnist_500[] =
    "protocolVersion: 2\n"
    "name: CPU_500Task_MNIST\n"
    "type: job\n"
    "jobRetryCount: 0\n"
    "prerequisites:\n"
    "  - type: dockerimage\n"
    "    uri: 'openpai/standard:python_3.6-pytorch_1.4.0-cpu'\n"
    "    name: docker_image_0\n"
    "taskRoles:\n"
    "  master:\n"
    "    instances: 1\n"
    "    completion:\n"
    "      minFailedInstances: 1\n"
    "    taskRetryCount: 0\n"
    "    dockerImage: docker_image_0\n"
    "    resourcePerInstance:\n"
    "      gpu: 0\n"
    "      cpu: 1\n"
    "      memoryMB: 50000\n"
    "    commands:\n"
    "      - >-\n"
    "        wget\n"
    "        https://raw.githubusercontent.com/microsoft/pai/master/examples/mnist_500_tasks/"
    "src/get_results.py\n"
    "      - >-\n"
    "        python get_results.py --number=500 --data_path\n"
    "        /mnt/confignfs/mnist500_result/\n"
    "      - jupyter notebook\n"
    "  taskrole:\n"
    "    instances: 500\n"
    "    completion:\n"
    "      minFailedInstances: 1\n"
    "      minSucceededInstances: -1\n"
    "    taskRetryCount: 0\n"
    "    dockerImage: docker_image_0\n"
    "    resourcePerInstance:\n"
    "      gpu: 0\n"
    "      cpu: 1\n"
    "      memoryMB: 50000\n"
    "    commands:\n"
    "      - >-\n"
    "        wget\n"
    "        https://raw.githubusercontent.com/microsoft/pai/master/examples/mnist_500_tasks/"
    "src/mnist_lr_500.py\n"
    "      - >-\n"
    "        python mnist_lr_500.py --epoch 5\n"
    "        --task_index=$PAI_CURRENT_TASK_ROLE_CURRENT_TASK_INDEX\n"
    "      - apt-get update\n"
    "      - apt-get install --assume-yes nfs-common\n"
    "      - mkdir -p data/mnist500_result\n"
    "      - 'mount -t nfs4 10.151.40.235:/data data'\n"
    "      - >-\n"
    "        cp results.csv\n"
    "        data/mnist500_result/results_$PAI_CURRENT_TASK_ROLE_CURRENT_TASK_INDEX.csv\n"
    "defaults:\n"
    "  virtualCluster: default\n"
    "extras:\n"
    "  gangAllocation: false\n"
    "  com.microsoft.pai.runtimeplugin:\n"
    "    - plugin: ssh\n"
    "      parameters:\n"
    "        jobssh: true\n"
    "    - plugin: teamwise_storage\n"
    "      parameters:\n"
    "        storageConfigNames:\n"
    "          - confignfs\n";

/* One job through the pipeline; returns 0 on success. */
static int one_job(const char *yaml, size_t len, int with_json)
{
    job_spec_t *spec = NULL;
    if (job_parse(yaml, len, "bench", &spec, NULL) != PAI_OK)
        return -1;
    for (size_t r = 0; r < spec->n_roles; r++) {
        for (int i = 0; i < spec->roles[r].instances; i++) {
            char *out = NULL;
            if (job_render_commands(spec, spec->roles[r].name, i, true, &out) != PAI_OK)
                return -1;
            free(out);
        }
    }
    if (with_json)
        json_decref(job_to_json(spec, true));
    job_spec_free(spec);
    return 0;
}

/* CPU time of this thread in microseconds: on a shared machine the wall
 * clock also counts time spent waiting for a core. */
static int64_t cpu_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static double run(const char *name, const char *yaml, int with_json, double seconds)
{
    size_t len = strlen(yaml);
    long n = 0;
    int64_t w0 = time_mono_us(), w = w0, c0 = cpu_us();
    while (w - w0 < (int64_t)(seconds * 1e6)) {
        for (int k = 0; k < 16; k++, n++)
            if (one_job(yaml, len, with_json) != 0) {
                fprintf(stderr, "bench: %s: job did not parse\n", name);
                exit(1);
            }
        w = time_mono_us();
    }
    double cpu_rate = (double)n / ((double)(cpu_us() - c0) / 1e6);
    double wall_rate = (double)n / ((double)(w - w0) / 1e6);
    printf("  %-30s %9.0f jobs/s  %7.1f us/job  (wall clock: %.0f jobs/s, %ld jobs)\n", name,
           cpu_rate, 1e6 / cpu_rate, wall_rate, n);
    return cpu_rate;
}

static void print_cpu(void)
{
    char line[512], model[256] = "unknown";
    FILE *f = fopen("/proc/cpuinfo", "r");
    while (f && fgets(line, sizeof(line), f)) {
        char *colon = strchr(line, ':');
        if (strncmp(line, "model name", 10) == 0 && colon) {
            str_copy(model, colon + 2, sizeof(model));
            model[strcspn(model, "\n")] = '\0';
            break;
        }
    }
    if (f)
        fclose(f);
    printf("cpu: %s (one core, single thread)\n", model);
}

int main(void)
{
    util_alloc_init(); /* allocation failures abort (common/util.h) */
    util_alloc_init();
    double secs = 2.0;
    const char *env = getenv("PAI_BENCH_SECONDS");
    int s;
    if (env && str_to_int(env, 1, 600, &s) == PAI_OK)
        secs = s;
    print_cpu();
    printf("job protocol throughput per CPU-second of one core\n"
           "(parse + validate + render every task's script):\n");
    double hw = run("hello-world", hello_world, 0, secs);
    run("hello-world +json", hello_world, 1, secs);
    run("500-task MNIST (501 scripts)", mnist_500, 0, secs);
    run("500-task MNIST +json", mnist_500, 1, secs);
    printf("target: >= 20000 hello-world jobs/s: %s\n", hw >= 20000 ? "met" : "NOT met");
    return 0;
}
