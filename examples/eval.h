/* morsel eval: what its parts (folder scanning, metrics and reports, the heatmap) share. */
#ifndef MORSEL_EVAL_H
#define MORSEL_EVAL_H

#include <stddef.h>
#include <stdio.h>

#include "morsel.h"

/* One image of the labelled folder. */
typedef struct eval_item {
    char *path;
    int truth;      /* class index, -1 when the file name gives none (flat layout) */
    int pred;       /* predicted class, -1 until classified or when unreadable */
    float prob;     /* the model's output for pred */
    int n_top;      /* top[0..n_top): the best classes, best first (top[0] == pred) */
    int *top;
    float *top_prob;
    char *error;    /* why it has no prediction (unreadable, no class), else NULL */
} eval_item;

typedef struct eval_set {
    eval_item *items; /* sorted by path */
    size_t n, cap;
    int flat;         /* 1: "<class index>_<n>.jpg" names; 0: one sub-folder per class */
    size_t n_ignored_top; /* images directly in DIR that the sub-folder layout ignores */
    /* filled by the caller while classifying */
    morsel_timings sum; /* summed over classified images */
    double wall_ms;     /* the whole classification loop */
} eval_set;

/* Lists the images of dir and their true classes (see README "Evaluating a model"). Returns 0,
 * or -1 with a readable reason in msg (unknown class folder, unreadable dir, ...). */
int eval_scan(const char *dir, const morsel_model *m, int n_classes, eval_set *set, char *msg,
              size_t msg_size);
void eval_set_free(eval_set *set);

/* Does a class sub-folder name stand for the model label? 0 no, 1 exactly, 2 ignoring case,
 * 3 ignoring case and treating '/', '-', '_' and ' ' as one separator. */
int eval_label_match(const char *folder, const char *label);

/* Metrics as scikit-learn computes them with its default label set: the classes present in the
 * truth or in the predictions, ascending (zero_division=0). */
typedef struct eval_metrics {
    int n_classes;            /* the model's */
    int n_labels, *labels;    /* classes in the report */
    long *cm;                 /* n_labels x n_labels counts, rows true, columns predicted */
    long *support, *predicted; /* row and column sums */
    double *precision, *recall, *f1;
    double macro[3], weighted[3]; /* precision, recall, f1 */
    long n, correct, n_unreadable, n_unlabelled;
    int k;                    /* top-k accuracy when > 1 */
    long topk_correct;
    double accuracy, topk_accuracy;
    int n_pairs;              /* most confused pairs (off-diagonal cells), largest first */
    int pair_true[5], pair_pred[5];
    long pair_count[5];
} eval_metrics;

int eval_compute(const eval_set *set, int n_classes, int k, eval_metrics *em);
void eval_metrics_free(eval_metrics *em);

/* Row-normalised fraction of cell (i, j); 0 for a row with no support (sklearn's nan -> 0). */
double eval_cm_norm(const eval_metrics *em, int i, int j);

typedef struct eval_run_info {
    const char *model_path, *dir;
    const morsel_model *model;
    int threads;
} eval_run_info;

void eval_print_text(FILE *f, const eval_set *set, const eval_metrics *em, const eval_run_info *ri);
void eval_print_json(FILE *f, const eval_set *set, const eval_metrics *em, const eval_run_info *ri);
void eval_print_csv(FILE *f, const eval_set *set, const morsel_model *m);

/* Writes the confusion matrix as a PNG heatmap. Returns 0, or -1 with a reason in msg. */
int eval_write_heatmap(const char *png_path, const eval_metrics *em, const eval_run_info *ri,
                       char *msg, size_t msg_size);

/* 5x9 bitmap font for ASCII 32..126: 9 rows (0-6 cap height, 7-8 descenders), bit 4 = left. */
extern const unsigned char eval_font[95][9];

#endif
