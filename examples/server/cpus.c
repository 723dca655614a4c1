/* How many CPUs this process may keep busy: a Kubernetes CPU limit arrives as a cgroup quota
 * (cpu.max in v2, cfs_quota_us/cfs_period_us in v1), a `taskset` or cpuset as the affinity
 * mask. The smaller wins; a fractional quota rounds up (1.5 CPUs -> 2 workers would
 * oversubscribe by a half, 1 would leave a half idle; throttling costs less than idling).
 * MORSEL_CGROUP_ROOT (default /sys/fs/cgroup) lets the tests point at a fake hierarchy. */
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "server.h"

static int read_line(const char *path, char *buf, size_t n)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    int ok = fgets(buf, (int)n, f) != NULL;
    fclose(f);
    return ok ? 0 : -1;
}

/* The cgroup path of this process for a v2 hierarchy ("0::/path") or for the v1 controller
 * list containing "cpu". Empty string when unknown. */
static void own_cgroup(int v2, char *out, size_t n)
{
    out[0] = 0;
    FILE *f = fopen("/proc/self/cgroup", "r");
    if (!f)
        return;
    char line[1024];
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = 0;
        char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
        if (!c2)
            continue;
        *c2 = 0;
        const char *ctrls = c1 + 1;
        int match = v2 ? (strcmp(line, "0") == 0 && *ctrls == 0) : 0;
        if (!v2) {
            char tmp[256];
            snprintf(tmp, sizeof tmp, ",%s,", ctrls);
            match = strstr(tmp, ",cpu,") != NULL;
        }
        if (match && strcmp(c2 + 1, "/") != 0) {
            snprintf(out, n, "%s", c2 + 1);
            break;
        }
    }
    fclose(f);
}

/* Quota in CPUs (ceil), or 0 when unlimited / unknown. v2: every ancestor's cpu.max limits
 * the process, so the smallest along the path counts. */
static int cgroup_v2_cpus(const char *root)
{
    char rel[1024], path[1400], line[128];
    own_cgroup(1, rel, sizeof rel);
    int best = 0;
    for (;;) {
        snprintf(path, sizeof path, "%s%s/cpu.max", root, rel);
        long long quota, period;
        if (read_line(path, line, sizeof line) == 0 && strncmp(line, "max", 3) != 0 &&
            sscanf(line, "%lld %lld", &quota, &period) == 2 && quota > 0 && period > 0) {
            int c = (int)((quota + period - 1) / period);
            if (best == 0 || c < best)
                best = c;
        }
        char *slash = strrchr(rel, '/');
        if (!slash || rel[0] == 0)
            break;
        *slash = 0; /* up to the parent, ending with the root itself */
    }
    return best;
}

static int cgroup_v1_cpus(const char *root)
{
    static const char *dirs[] = {"cpu", "cpu,cpuacct", "cpuacct,cpu"};
    char rel[1024], path[1400], line[64];
    own_cgroup(0, rel, sizeof rel);
    for (size_t d = 0; d < sizeof dirs / sizeof dirs[0]; d++) {
        for (int with_rel = 1; with_rel >= 0; with_rel--) {
            const char *r = with_rel ? rel : "";
            long long quota = 0, period = 0;
            snprintf(path, sizeof path, "%s/%s%s/cpu.cfs_quota_us", root, dirs[d], r);
            if (read_line(path, line, sizeof line) || sscanf(line, "%lld", &quota) != 1)
                continue;
            snprintf(path, sizeof path, "%s/%s%s/cpu.cfs_period_us", root, dirs[d], r);
            if (read_line(path, line, sizeof line) || sscanf(line, "%lld", &period) != 1)
                continue;
            if (quota <= 0 || period <= 0)
                return 0; /* -1: unlimited */
            return (int)((quota + period - 1) / period);
        }
    }
    return 0;
}

int cpus_usable(const char **why)
{
    int n = 0;
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0)
        n = CPU_COUNT(&set);
    if (n <= 0) {
        long c = sysconf(_SC_NPROCESSORS_ONLN);
        n = c > 0 ? (int)c : 1;
    }
    *why = "affinity mask";
    const char *root = getenv("MORSEL_CGROUP_ROOT");
    if (!root || !*root)
        root = "/sys/fs/cgroup";
    int q = cgroup_v2_cpus(root);
    const char *qwhy = "cgroup v2 cpu.max";
    if (q == 0) {
        q = cgroup_v1_cpus(root);
        qwhy = "cgroup v1 cfs quota";
    }
    if (q > 0 && q < n) {
        n = q;
        *why = qwhy;
    }
    return n;
}
