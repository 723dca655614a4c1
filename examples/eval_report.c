/* morsel eval: the metrics, computed exactly as scikit-learn defines them, and the text, JSON
 * and CSV reports. */
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "eval.h"

static int classified(const eval_item *it)
{
    return it->truth >= 0 && !it->error;
}

static double ratio(double num, double den)
{
    return den > 0 ? num / den : 0.0; /* zero_division=0 */
}

int eval_compute(const eval_set *set, int n_classes, int k, eval_metrics *em)
{
    memset(em, 0, sizeof *em);
    em->n_classes = n_classes;
    em->k = k;
    int *pos = malloc((size_t)n_classes * sizeof *pos);
    if (!pos)
        return -1;
    for (int c = 0; c < n_classes; c++)
        pos[c] = -1;
    for (size_t i = 0; i < set->n; i++) {
        const eval_item *it = &set->items[i];
        if (classified(it)) {
            pos[it->truth] = pos[it->pred] = 1;
            em->n++;
        } else if (it->truth >= 0) {
            em->n_unreadable++;
        } else {
            em->n_unlabelled++;
        }
    }
    int L = 0;
    for (int c = 0; c < n_classes; c++)
        if (pos[c] > 0)
            L++;
    em->n_labels = L;
    em->labels = malloc((size_t)(L ? L : 1) * sizeof *em->labels);
    em->cm = calloc((size_t)(L ? L * L : 1), sizeof *em->cm);
    em->support = calloc((size_t)(L ? L : 1), sizeof *em->support);
    em->predicted = calloc((size_t)(L ? L : 1), sizeof *em->predicted);
    em->precision = calloc((size_t)(L ? L : 1) * 3, sizeof *em->precision);
    if (!em->labels || !em->cm || !em->support || !em->predicted || !em->precision) {
        free(pos);
        eval_metrics_free(em);
        return -1;
    }
    em->recall = em->precision + L;
    em->f1 = em->precision + 2 * L;
    for (int c = 0, j = 0; c < n_classes; c++)
        if (pos[c] > 0) {
            em->labels[j] = c;
            pos[c] = j++;
        }
    for (size_t i = 0; i < set->n; i++) {
        const eval_item *it = &set->items[i];
        if (!classified(it))
            continue;
        em->cm[pos[it->truth] * L + pos[it->pred]]++;
        em->correct += it->pred == it->truth;
        for (int t = 0; t < it->n_top && t < k; t++)
            if (it->top[t] == it->truth) {
                em->topk_correct++;
                break;
            }
    }
    free(pos);
    for (int i = 0; i < L; i++)
        for (int j = 0; j < L; j++) {
            em->support[i] += em->cm[i * L + j];
            em->predicted[j] += em->cm[i * L + j];
        }
    double sum[3] = {0, 0, 0}, wsum[3] = {0, 0, 0};
    for (int i = 0; i < L; i++) {
        double tp = (double)em->cm[i * L + i];
        em->precision[i] = ratio(tp, (double)em->predicted[i]);
        em->recall[i] = ratio(tp, (double)em->support[i]);
        /* sklearn: F1 = 2 tp / (2 tp + fp + fn) = 2 tp / (support + predicted) */
        em->f1[i] = ratio(2 * tp, (double)(em->support[i] + em->predicted[i]));
        const double v[3] = {em->precision[i], em->recall[i], em->f1[i]};
        for (int m = 0; m < 3; m++) {
            sum[m] += v[m];
            wsum[m] += v[m] * (double)em->support[i];
        }
    }
    for (int m = 0; m < 3; m++) {
        em->macro[m] = L ? sum[m] / L : 0.0;
        em->weighted[m] = ratio(wsum[m], (double)em->n);
    }
    em->accuracy = ratio((double)em->correct, (double)em->n);
    em->topk_accuracy = ratio((double)em->topk_correct, (double)em->n);
    /* The largest off-diagonal cells; ties in row-major (true, predicted) order. */
    for (int i = 0; i < L; i++)
        for (int j = 0; j < L; j++) {
            long c = em->cm[i * L + j];
            if (i == j || c == 0)
                continue;
            int at = em->n_pairs < 5 ? em->n_pairs++ : 5;
            while (at > 0 && em->pair_count[at - 1] < c) {
                if (at < 5) {
                    em->pair_true[at] = em->pair_true[at - 1];
                    em->pair_pred[at] = em->pair_pred[at - 1];
                    em->pair_count[at] = em->pair_count[at - 1];
                }
                at--;
            }
            if (at < 5) {
                em->pair_true[at] = em->labels[i];
                em->pair_pred[at] = em->labels[j];
                em->pair_count[at] = c;
            }
        }
    return 0;
}

void eval_metrics_free(eval_metrics *em)
{
    free(em->labels);
    free(em->cm);
    free(em->support);
    free(em->predicted);
    free(em->precision);
    memset(em, 0, sizeof *em);
}

double eval_cm_norm(const eval_metrics *em, int i, int j)
{
    return ratio((double)em->cm[i * em->n_labels + j], (double)em->support[i]);
}

static const char *label_of(const morsel_model *m, int c)
{
    const char *s = morsel_model_label(m, c);
    return s && *s ? s : "-";
}

static void print_problems(FILE *f, const eval_set *set, int unreadable)
{
    for (size_t i = 0; i < set->n; i++) {
        const eval_item *it = &set->items[i];
        if (it->error && (it->truth >= 0) == unreadable)
            fprintf(f, "  %s %s: %s\n", unreadable ? "unreadable" : "no class  ", it->path,
                    it->error);
    }
}

void eval_print_text(FILE *f, const eval_set *set, const eval_metrics *em, const eval_run_info *ri)
{
    const morsel_model *m = ri->model;
    const int L = em->n_labels;
    fprintf(f, "morsel eval: %s on %s (%s)\n", ri->model_path, ri->dir,
            set->flat ? "flat <class index>_<n> names" : "class sub-folders");
    fprintf(f, "images        %ld classified, %ld unreadable", em->n, em->n_unreadable);
    if (em->n_unlabelled)
        fprintf(f, ", %ld without a class in their name", em->n_unlabelled);
    if (set->n_ignored_top)
        fprintf(f, ", %zu beside the class folders ignored", set->n_ignored_top);
    fprintf(f, "\n");
    print_problems(f, set, 1);
    print_problems(f, set, 0);
    fprintf(f, "\naccuracy        %.4f  (%ld of %ld)\n", em->accuracy, em->correct, em->n);
    if (em->k > 1)
        fprintf(f, "top-%d accuracy  %.4f  (%ld of %ld)\n", em->k, em->topk_accuracy,
                em->topk_correct, em->n);

    int w = 12;
    for (int i = 0; i < L; i++) {
        int len = (int)strlen(label_of(m, em->labels[i])) + 5;
        w = len > w ? (len < 40 ? len : 40) : w;
    }
    fprintf(f, "\n%-*s  precision    recall  f1-score   support\n", w, "class");
    for (int i = 0; i < L; i++)
        fprintf(f, "%3d  %-*.*s  %9.4f %9.4f %9.4f %9ld\n", em->labels[i], w - 5, w - 5,
                label_of(m, em->labels[i]), em->precision[i], em->recall[i], em->f1[i],
                em->support[i]);
    fprintf(f, "\n%-*s  %9s %9s %9.4f %9ld\n", w, "accuracy", "", "", em->accuracy, em->n);
    fprintf(f, "%-*s  %9.4f %9.4f %9.4f %9ld\n", w, "macro avg", em->macro[0], em->macro[1],
            em->macro[2], em->n);
    fprintf(f, "%-*s  %9.4f %9.4f %9.4f %9ld\n", w, "weighted avg", em->weighted[0],
            em->weighted[1], em->weighted[2], em->n);

    for (int pct = 0; pct < 2; pct++) {
        fprintf(f, pct ? "\nconfusion matrix, %% of each true class\n"
                       : "\nconfusion matrix (rows: true class, columns: predicted class)\n");
        fprintf(f, "%-*s ", w, "");
        for (int j = 0; j < L; j++)
            fprintf(f, " %6d", em->labels[j]);
        fprintf(f, "\n");
        for (int i = 0; i < L; i++) {
            fprintf(f, "%3d  %-*.*s ", em->labels[i], w - 5, w - 5, label_of(m, em->labels[i]));
            for (int j = 0; j < L; j++) {
                if (pct)
                    fprintf(f, " %6.1f", 100.0 * eval_cm_norm(em, i, j));
                else
                    fprintf(f, " %6ld", em->cm[i * L + j]);
            }
            fprintf(f, "\n");
        }
    }
    fprintf(f, "\nmost confused (true -> predicted)\n");
    if (!em->n_pairs)
        fprintf(f, "  none: every image was classified correctly\n");
    for (int p = 0; p < em->n_pairs; p++)
        fprintf(f, "%6ld  %s -> %s\n", em->pair_count[p], label_of(m, em->pair_true[p]),
                label_of(m, em->pair_pred[p]));

    fprintf(f, "\nthroughput    %.1f images/s (%d thread%s), mean per image: decode %.2f ms, "
            "preprocess %.2f ms, inference %.2f ms, total %.2f ms\n",
            ratio((double)em->n, set->wall_ms / 1e3), ri->threads, ri->threads == 1 ? "" : "s",
            ratio(set->sum.decode_ms, (double)em->n), ratio(set->sum.preprocess_ms, (double)em->n),
            ratio(set->sum.inference_ms, (double)em->n), ratio(set->sum.total_ms, (double)em->n));
}

static void json_label(FILE *f, const char *key, const morsel_model *m, int c)
{
    const char *s = morsel_model_label(m, c);
    fprintf(f, ", \"%s\": ", key);
    cli_json_string(f, s ? s : "");
}

static void json_avg(FILE *f, const char *key, const double v[3], long support)
{
    fprintf(f, "  \"%s\": {\"precision\": %.17g, \"recall\": %.17g, \"f1\": %.17g, "
            "\"support\": %ld},\n", key, v[0], v[1], v[2], support);
}

void eval_print_json(FILE *f, const eval_set *set, const eval_metrics *em, const eval_run_info *ri)
{
    const morsel_model *m = ri->model;
    const int L = em->n_labels;
    fprintf(f, "{\n  \"model\": ");
    cli_json_string(f, ri->model_path);
    fprintf(f, ",\n  \"dir\": ");
    cli_json_string(f, ri->dir);
    fprintf(f, ",\n  \"layout\": \"%s\",\n", set->flat ? "flat" : "folders");
    fprintf(f, "  \"n_images\": %ld,\n  \"n_unreadable\": %ld,\n  \"n_unlabelled\": %ld,\n",
            em->n, em->n_unreadable, em->n_unlabelled);
    for (int unreadable = 1; unreadable >= 0; unreadable--) {
        fprintf(f, "  \"%s\": [", unreadable ? "unreadable" : "unlabelled");
        int first = 1;
        for (size_t i = 0; i < set->n; i++) {
            const eval_item *it = &set->items[i];
            if (!it->error || (it->truth >= 0) != unreadable)
                continue;
            fprintf(f, "%s\n    {\"path\": ", first ? "" : ",");
            cli_json_string(f, it->path);
            fprintf(f, ", \"error\": ");
            cli_json_string(f, it->error);
            fprintf(f, "}");
            first = 0;
        }
        fprintf(f, "%s],\n", first ? "" : "\n  ");
    }
    fprintf(f, "  \"accuracy\": %.17g,\n  \"correct\": %ld,\n", em->accuracy, em->correct);
    fprintf(f, "  \"top_k\": %d,\n  \"top_k_accuracy\": %.17g,\n", em->k, em->topk_accuracy);
    fprintf(f, "  \"labels\": [");
    for (int i = 0; i < L; i++)
        fprintf(f, "%s%d", i ? ", " : "", em->labels[i]);
    fprintf(f, "],\n  \"per_class\": [");
    for (int i = 0; i < L; i++) {
        fprintf(f, "%s\n    {\"index\": %d", i ? "," : "", em->labels[i]);
        json_label(f, "label", m, em->labels[i]);
        fprintf(f, ", \"precision\": %.17g, \"recall\": %.17g, \"f1\": %.17g, \"support\": %ld, "
                "\"predicted\": %ld}", em->precision[i], em->recall[i], em->f1[i], em->support[i],
                em->predicted[i]);
    }
    fprintf(f, "\n  ],\n");
    json_avg(f, "macro_avg", em->macro, em->n);
    json_avg(f, "weighted_avg", em->weighted, em->n);
    for (int pct = 0; pct < 2; pct++) {
        fprintf(f, "  \"%s\": [", pct ? "confusion_matrix_normalized" : "confusion_matrix");
        for (int i = 0; i < L; i++) {
            fprintf(f, "%s\n    [", i ? "," : "");
            for (int j = 0; j < L; j++) {
                if (pct)
                    fprintf(f, "%s%.17g", j ? ", " : "", eval_cm_norm(em, i, j));
                else
                    fprintf(f, "%s%ld", j ? ", " : "", em->cm[i * L + j]);
            }
            fprintf(f, "]");
        }
        fprintf(f, "\n  ],\n");
    }
    fprintf(f, "  \"most_confused\": [");
    for (int p = 0; p < em->n_pairs; p++) {
        fprintf(f, "%s\n    {\"true\": %d", p ? "," : "", em->pair_true[p]);
        json_label(f, "true_label", m, em->pair_true[p]);
        fprintf(f, ", \"predicted\": %d", em->pair_pred[p]);
        json_label(f, "predicted_label", m, em->pair_pred[p]);
        fprintf(f, ", \"count\": %ld}", em->pair_count[p]);
    }
    fprintf(f, "%s],\n", em->n_pairs ? "\n  " : "");
    fprintf(f, "  \"throughput\": {\"images_per_s\": %.6g, \"wall_s\": %.6g, \"threads\": %d, "
            "\"mean_ms\": {\"decode\": %.4f, \"preprocess\": %.4f, \"inference\": %.4f, "
            "\"total\": %.4f}},\n",
            ratio((double)em->n, set->wall_ms / 1e3), set->wall_ms / 1e3, ri->threads,
            ratio(set->sum.decode_ms, (double)em->n), ratio(set->sum.preprocess_ms, (double)em->n),
            ratio(set->sum.inference_ms, (double)em->n), ratio(set->sum.total_ms, (double)em->n));
    fprintf(f, "  \"predictions\": [");
    int first = 1;
    for (size_t i = 0; i < set->n; i++) {
        const eval_item *it = &set->items[i];
        if (!classified(it))
            continue;
        fprintf(f, "%s\n    {\"path\": ", first ? "" : ",");
        cli_json_string(f, it->path);
        fprintf(f, ", \"true\": %d", it->truth);
        json_label(f, "true_label", m, it->truth);
        fprintf(f, ", \"predicted\": %d", it->pred);
        json_label(f, "predicted_label", m, it->pred);
        fprintf(f, ", \"probability\": %.9g, \"top\": [", (double)it->prob);
        for (int t = 0; t < it->n_top && t < em->k; t++)
            fprintf(f, "%s[%d, %.9g]", t ? ", " : "", it->top[t], (double)it->top_prob[t]);
        fprintf(f, "]}");
        first = 0;
    }
    fprintf(f, "%s]\n}\n", first ? "" : "\n  ");
}

/* RFC 4180: quoted when it holds a comma, a quote or a line break; quotes doubled. */
static void csv_field(FILE *f, const char *s)
{
    if (!strpbrk(s, ",\"\r\n")) {
        fputs(s, f);
        return;
    }
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"')
            fputc('"', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

void eval_print_csv(FILE *f, const eval_set *set, const morsel_model *m)
{
    fprintf(f, "path,true_index,true_label,pred_index,pred_label,probability\n");
    for (size_t i = 0; i < set->n; i++) {
        const eval_item *it = &set->items[i];
        if (!classified(it))
            continue;
        const char *tl = morsel_model_label(m, it->truth), *pl = morsel_model_label(m, it->pred);
        csv_field(f, it->path);
        fprintf(f, ",%d,", it->truth);
        csv_field(f, tl ? tl : "");
        fprintf(f, ",%d,", it->pred);
        csv_field(f, pl ? pl : "");
        fprintf(f, ",%.9g\n", (double)it->prob);
    }
}
