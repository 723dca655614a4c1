/* morsel eval: the labelled images of a folder, in one of two layouts:
 *   DIR/<class label>/<any>.jpg  one sub-folder per class, as Keras flow_from_directory reads it;
 *   DIR/<class index>_<n>.jpg flat Food-11 names, the number before '_' being the class index.
 * Only .jpg, .jpeg and .png files (any case) count; names starting with '.' are skipped; the
 * layout is "sub-folders" as soon as DIR has a sub-folder, and nothing deeper is read. */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "eval.h"

static void set_msg(char *msg, size_t size, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, size, fmt, ap);
    va_end(ap);
}

/* Appends to msg, keeping what is there (truncated when full). */
static void add_msg(char *msg, size_t size, const char *fmt, ...)
{
    size_t used = strlen(msg);
    if (used + 1 >= size)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg + used, size - used, fmt, ap);
    va_end(ap);
}

static int ends_with_ci(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    if (n < m)
        return 0;
    for (size_t i = 0; i < m; i++)
        if (tolower((unsigned char)s[n - m + i]) != tolower((unsigned char)suffix[i]))
            return 0;
    return 1;
}

static int is_image_name(const char *name)
{
    return ends_with_ci(name, ".jpg") || ends_with_ci(name, ".jpeg") || ends_with_ci(name, ".png");
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int cmp_item(const void *a, const void *b)
{
    return strcmp(((const eval_item *)a)->path, ((const eval_item *)b)->path);
}

static char *join(const char *dir, const char *name)
{
    size_t n = strlen(dir);
    while (n > 1 && dir[n - 1] == '/')
        n--;
    char *p = malloc(n + strlen(name) + 2);
    if (p)
        sprintf(p, "%.*s/%s", (int)n, dir, name);
    return p;
}

static void free_names(char **names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

/* The entries of dir (except names starting with '.'), sorted. Returns 0 or -1 (errno set). */
static int list_dir(const char *dir, char ***out, size_t *n_out)
{
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    int rc = 0;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        if (n == cap) {
            char **bigger = realloc(names, (cap = cap ? 2 * cap : 64) * sizeof *names);
            if (!bigger) {
                rc = -1;
                break;
            }
            names = bigger;
        }
        if (!(names[n] = strdup(e->d_name))) {
            rc = -1;
            break;
        }
        n++;
    }
    closedir(d);
    if (rc) {
        free_names(names, n);
        errno = ENOMEM;
        return -1;
    }
    if (n)
        qsort(names, n, sizeof *names, cmp_str);
    *out = names;
    *n_out = n;
    return 0;
}

static int is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static int is_file(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* Takes ownership of path and error. */
static int add_item(eval_set *set, char *path, int truth, char *error)
{
    if (set->n == set->cap) {
        size_t cap = set->cap ? 2 * set->cap : 256;
        eval_item *bigger = realloc(set->items, cap * sizeof *bigger);
        if (!bigger) {
            free(path);
            free(error);
            return -1;
        }
        set->items = bigger;
        set->cap = cap;
    }
    eval_item *it = &set->items[set->n++];
    memset(it, 0, sizeof *it);
    it->path = path;
    it->truth = truth;
    it->pred = -1;
    it->error = error;
    return 0;
}

static int sep_char(int c)
{
    return c == '/' || c == '-' || c == '_' || c == ' ';
}

int eval_label_match(const char *folder, const char *label)
{
    if (!strcmp(folder, label))
        return 1;
    int level = 2;
    const unsigned char *a = (const unsigned char *)folder, *b = (const unsigned char *)label;
    for (; *a && *b; a++, b++) {
        if (tolower(*a) == tolower(*b))
            continue;
        if (sep_char(*a) && sep_char(*b))
            level = 3;
        else
            return 0;
    }
    return *a || *b ? 0 : level;
}

/* The class a folder name stands for: the labels matched at the best level, which must be
 * unique. Returns the index, -1 for no label, -2 for several. */
static int folder_class(const char *folder, const morsel_model *m, int n_classes)
{
    for (int level = 1; level <= 3; level++) {
        int found = -1, count = 0;
        for (int c = 0; c < n_classes; c++) {
            const char *label = morsel_model_label(m, c);
            if (label && eval_label_match(folder, label) == level) {
                found = c;
                count++;
            }
        }
        if (count)
            return count == 1 ? found : -2;
    }
    return -1;
}

static void list_both(char *msg, size_t size, char **dirs, size_t n_dirs, const morsel_model *m,
                      int n_classes)
{
    add_msg(msg, size, "\n  folders:");
    for (size_t i = 0; i < n_dirs; i++)
        add_msg(msg, size, "%s '%s'", i ? "," : "", dirs[i]);
    add_msg(msg, size, "\n  labels: ");
    for (int c = 0; c < n_classes; c++) {
        const char *label = morsel_model_label(m, c);
        add_msg(msg, size, "%s '%s'", c ? "," : "", label ? label : "");
    }
}

static int scan_folders(const char *dir, char **dirs, size_t n_dirs, const morsel_model *m,
                        int n_classes, eval_set *set, char *msg, size_t size)
{
    if (!morsel_model_label(m, 0)) {
        set_msg(msg, size, "%s has class sub-folders but the model has no labels to match them "
                "to; name the images '<class index>_<n>.jpg' in one folder instead", dir);
        return -1;
    }
    int *cls = malloc(n_dirs * sizeof *cls);
    if (!cls) {
        set_msg(msg, size, "out of memory");
        return -1;
    }
    int bad = 0;
    for (size_t i = 0; i < n_dirs; i++) {
        cls[i] = folder_class(dirs[i], m, n_classes);
        if (cls[i] < 0) {
            if (!bad++)
                set_msg(msg, size, "class folders of %s that match no single label of the "
                        "model (compared exactly, else ignoring case, else with '/', '-', '_' "
                        "and ' ' alike):", dir);
            add_msg(msg, size, " '%s'%s", dirs[i], cls[i] == -2 ? " (ambiguous)" : "");
        }
    }
    if (bad) {
        list_both(msg, size, dirs, n_dirs, m, n_classes);
        free(cls);
        return -1;
    }
    int rc = 0;
    for (size_t i = 0; i < n_dirs && rc == 0; i++) {
        char *sub = join(dir, dirs[i]), **names = NULL;
        size_t n = 0;
        if (!sub || list_dir(sub, &names, &n) != 0) {
            set_msg(msg, size, "cannot read %s: %s", sub ? sub : dirs[i], strerror(errno));
            free(sub);
            rc = -1;
            break;
        }
        for (size_t j = 0; j < n && rc == 0; j++) {
            if (!is_image_name(names[j]))
                continue;
            char *path = join(sub, names[j]);
            if (!path || (is_file(path) ? add_item(set, path, cls[i], NULL) : (free(path), 0))) {
                set_msg(msg, size, "out of memory");
                rc = -1;
            }
        }
        free_names(names, n);
        free(sub);
    }
    free(cls);
    return rc;
}

/* "<digits>_..." gives the class index; anything else, or an index out of range, an error. */
static int flat_class(const char *name, int n_classes, char **error)
{
    const char *p = name;
    long v = 0;
    while (isdigit((unsigned char)*p) && v < 1000000)
        v = v * 10 + (*p++ - '0');
    char buf[160];
    if (p == name || *p != '_')
        snprintf(buf, sizeof buf, "no class: the name does not start with '<class index>_'");
    else if (v >= n_classes)
        snprintf(buf, sizeof buf, "no class: index %ld is out of range (the model has %d "
                 "classes)", v, n_classes);
    else
        return (int)v;
    *error = strdup(buf);
    return -1;
}

int eval_scan(const char *dir, const morsel_model *m, int n_classes, eval_set *set, char *msg,
              size_t msg_size)
{
    memset(set, 0, sizeof *set);
    msg[0] = 0;
    char **names = NULL, **dirs = NULL;
    size_t n = 0, n_dirs = 0;
    if (list_dir(dir, &names, &n) != 0) {
        set_msg(msg, msg_size, "cannot read %s: %s", dir, strerror(errno));
        return -1;
    }
    int rc = 0;
    char **images = calloc(n + 1, sizeof *images);
    dirs = calloc(n + 1, sizeof *dirs);
    size_t n_images = 0;
    for (size_t i = 0; i < n && images && dirs; i++) {
        char *path = join(dir, names[i]);
        if (path && is_dir(path))
            dirs[n_dirs++] = names[i];
        else if (path && is_image_name(names[i]) && is_file(path))
            images[n_images++] = names[i];
        free(path);
    }
    if (!images || !dirs) {
        set_msg(msg, msg_size, "out of memory");
        rc = -1;
    } else if (n_dirs) {
        set->flat = 0;
        set->n_ignored_top = n_images;
        rc = scan_folders(dir, dirs, n_dirs, m, n_classes, set, msg, msg_size);
    } else {
        set->flat = 1;
        for (size_t i = 0; i < n_images && rc == 0; i++) {
            char *error = NULL;
            int truth = flat_class(images[i], n_classes, &error);
            char *path = join(dir, images[i]);
            if (!path || (truth < 0 && !error)) {
                free(path);
                free(error);
                set_msg(msg, msg_size, "out of memory");
                rc = -1;
            } else if (add_item(set, path, truth, error)) {
                set_msg(msg, msg_size, "out of memory");
                rc = -1;
            }
        }
    }
    free(images);
    free(dirs);
    free_names(names, n);
    if (rc == 0 && set->n == 0) {
        set_msg(msg, msg_size, "no .jpg, .jpeg or .png images in %s%s", dir,
                set->flat ? "" : "'s class sub-folders");
        rc = -1;
    }
    if (rc == 0)
        qsort(set->items, set->n, sizeof *set->items, cmp_item);
    if (rc)
        eval_set_free(set);
    return rc;
}

void eval_set_free(eval_set *set)
{
    for (size_t i = 0; i < set->n; i++) {
        free(set->items[i].path);
        free(set->items[i].top);
        free(set->items[i].top_prob);
        free(set->items[i].error);
    }
    free(set->items);
    memset(set, 0, sizeof *set);
}
