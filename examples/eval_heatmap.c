/* morsel eval --heatmap: the confusion matrix as a PNG, in the style of a seaborn heatmap --
 * cells coloured white -> dark blue by the row-normalised share, the count (and the share)
 * written in each cell, true classes down the left, predicted classes along the bottom, a
 * colour bar, a title and axis captions. Text uses the bitmap font of eval_font.c. */
#include <png.h>
#include <stdlib.h>
#include <string.h>

#include "eval.h"

typedef struct rgb {
    unsigned char r, g, b;
} rgb;

typedef struct canvas {
    int w, h;
    unsigned char *px;
} canvas;

#define GLYPH_W 5
#define GLYPH_H 9   /* with descenders */
#define ADVANCE 6
#define MAX_LABEL 22 /* characters of a class name before it is abbreviated */

static const rgb INK = {34, 34, 34}, WHITE = {255, 255, 255}, GREY = {150, 150, 150};

static void put(canvas *c, int x, int y, rgb col)
{
    if (x < 0 || y < 0 || x >= c->w || y >= c->h)
        return;
    unsigned char *p = c->px + ((size_t)y * c->w + x) * 3;
    p[0] = col.r;
    p[1] = col.g;
    p[2] = col.b;
}

static void fill(canvas *c, int x, int y, int w, int h, rgb col)
{
    for (int j = y; j < y + h; j++)
        for (int i = x; i < x + w; i++)
            put(c, i, j, col);
}

/* White -> light blue -> mid blue -> dark navy, piecewise linear in v (0..1). */
static rgb colour(double v)
{
    static const double at[4] = {0.0, 0.35, 0.7, 1.0};
    static const rgb stop[4] = {{255, 255, 255}, {190, 215, 236}, {74, 144, 200}, {8, 48, 107}};
    v = v < 0 ? 0 : v > 1 ? 1 : v;
    int s = v <= at[1] ? 0 : v <= at[2] ? 1 : 2;
    double t = (v - at[s]) / (at[s + 1] - at[s]);
    rgb out = {(unsigned char)(stop[s].r + t * (stop[s + 1].r - stop[s].r) + 0.5),
               (unsigned char)(stop[s].g + t * (stop[s + 1].g - stop[s].g) + 0.5),
               (unsigned char)(stop[s].b + t * (stop[s + 1].b - stop[s].b) + 0.5)};
    return out;
}

static int text_w(const char *s, int scale)
{
    size_t n = strlen(s);
    return n ? (int)(n * ADVANCE - 1) * scale : 0;
}

/* Draws s with its top-left corner at (x, y); rotated, it reads bottom to top and (x, y) is
 * the bottom-left corner of its first glyph. */
static void text(canvas *c, int x, int y, const char *s, int scale, rgb col, int rotated)
{
    for (int k = 0; s[k]; k++) {
        unsigned char ch = (unsigned char)s[k];
        const unsigned char *g = eval_font[ch >= 32 && ch < 127 ? ch - 32 : '?' - 32];
        for (int row = 0; row < GLYPH_H; row++)
            for (int bit = 0; bit < GLYPH_W; bit++) {
                if (!(g[row] >> (GLYPH_W - 1 - bit) & 1))
                    continue;
                int tx = (k * ADVANCE + bit) * scale, ty = row * scale;
                if (rotated)
                    fill(c, x + ty, y - tx - scale + 1, scale, scale, col);
                else
                    fill(c, x + tx, y + ty, scale, scale, col);
            }
    }
}

/* A class name the font can draw: Latin-1 letters (U+00C0..U+00FF) lose their accents, other
 * non-ASCII characters become '?' (one per UTF-8 sequence), and names longer than MAX_LABEL
 * are cut and end with '.'. */
static void ascii_label(char *dst, const char *src)
{
    static const char latin1[] = "AAAAAAACEEEEIIIIDNOOOOOxOUUUUYPsaaaaaaaceeeeiiiidnooooo/ouuuuypy";
    int n = 0;
    for (const unsigned char *p = (const unsigned char *)src; *p && n < MAX_LABEL + 1; p++) {
        if (*p >= 0x80 && *p < 0xC0)
            continue;
        if (*p == 0xC3 && p[1] >= 0x80 && p[1] < 0xC0)
            dst[n++] = latin1[*++p - 0x80];
        else
            dst[n++] = *p >= 32 && *p < 127 ? (char)*p : '?';
    }
    if (n > MAX_LABEL) {
        n = MAX_LABEL;
        dst[n - 1] = '.';
    }
    dst[n] = 0;
}

static int write_png(const char *path, const canvas *c, char *msg, size_t size)
{
    FILE *f = fopen(path, "wb");
    if (!f) {
        snprintf(msg, size, "cannot write %s", path);
        return -1;
    }
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!info || setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, info ? &info : NULL);
        fclose(f);
        snprintf(msg, size, "libpng could not write %s", path);
        return -1;
    }
    png_init_io(png, f);
    png_set_IHDR(png, info, (png_uint_32)c->w, (png_uint_32)c->h, 8, PNG_COLOR_TYPE_RGB,
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    for (int y = 0; y < c->h; y++)
        png_write_row(png, c->px + (size_t)y * c->w * 3);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    if (fclose(f) != 0) {
        snprintf(msg, size, "cannot write %s", path);
        return -1;
    }
    return 0;
}

static const char *base_name(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

int eval_write_heatmap(const char *png_path, const eval_metrics *em, const eval_run_info *ri,
                       char *msg, size_t msg_size)
{
    const int n = em->n_labels, margin = 24, S = 2;
    int cell = n ? 640 / n : 80;
    cell = cell < 26 ? 26 : cell > 110 ? 110 : cell;
    const int ls = cell >= 30 ? S : 1; /* scale of the class names */
    char(*names)[MAX_LABEL + 2] = malloc((size_t)(n ? n : 1) * sizeof *names);
    if (!names) {
        snprintf(msg, msg_size, "out of memory");
        return -1;
    }
    int name_w = 0;
    for (int i = 0; i < n; i++) {
        const char *l = morsel_model_label(ri->model, em->labels[i]);
        char idx[16];
        snprintf(idx, sizeof idx, "%d", em->labels[i]);
        ascii_label(names[i], l && *l ? l : idx);
        int w = text_w(names[i], ls);
        name_w = w > name_w ? w : name_w;
    }
    const int rotate_cols = name_w > cell - 6;
    char lines[3][300] = {"Confusion matrix", "", "colour: share of each true class"};
    snprintf(lines[1], sizeof lines[1], "%s: %ld images, accuracy %.1f%%",
             base_name(ri->model_path), em->n, 100.0 * em->accuracy);
    const int line_y[3] = {margin, margin + GLYPH_H * 3 + 10, margin + GLYPH_H * 3 + 10 + 22};
    int cap_h = GLYPH_H * S, top = line_y[2] + GLYPH_H * S + 20;
    int grid_x = margin + cap_h + 14 + name_w + 12, grid_y = top, G = n * cell;
    int col_h = rotate_cols ? name_w : GLYPH_H * ls;
    int bar_x = grid_x + G + 24, bar_w = 22;
    canvas c;
    c.w = bar_x + bar_w + 8 + text_w("100%", S) + margin;
    for (int t = 0; t < 3; t++) {
        int need = margin * 2 + text_w(lines[t], t ? S : 3);
        c.w = c.w > need ? c.w : need;
    }
    c.h = grid_y + G + 10 + col_h + 16 + cap_h + margin;
    c.px = malloc((size_t)c.w * c.h * 3);
    if (!c.px) {
        free(names);
        snprintf(msg, msg_size, "out of memory");
        return -1;
    }
    memset(c.px, 255, (size_t)c.w * c.h * 3);

    /* title and subtitle, centred on the grid when they fit, else on the image */
    int cx = grid_x + G / 2;
    for (int t = 0; t < 3; t++) {
        int sc = t ? S : 3, w = text_w(lines[t], sc), x = cx - w / 2;
        x = x < margin ? margin : x + w > c.w - margin ? c.w - margin - w : x;
        text(&c, x, line_y[t], lines[t], sc, t ? GREY : INK, 0);
    }
    /* cells: colour by the row share, count (and share when there is room) in the middle */
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) {
            double v = eval_cm_norm(em, i, j);
            int x = grid_x + j * cell, y = grid_y + i * cell;
            fill(&c, x, y, cell, cell, colour(v));
            rgb ink = v > 0.5 ? WHITE : INK;
            char count[24], pct[16];
            snprintf(count, sizeof count, "%ld", em->cm[i * n + j]);
            snprintf(pct, sizeof pct, "%.0f%%", 100.0 * v);
            /* the count as large as fits, the share below it (non-zero cells, when room) */
            int cs = 0;
            for (int sc = cell >= 54 ? 3 : S; sc >= 1 && !cs; sc--)
                if (text_w(count, sc) <= cell - 6)
                    cs = sc;
            int ps = 2; /* the share: scale 2 under a scale-3 count, when it fits */
            int show_pct = cs == 3 && em->cm[i * n + j] && text_w(pct, ps) <= cell - 4 &&
                           7 * cs + 4 * ps + 7 * ps <= cell - 6;
            int block = 7 * cs + (show_pct ? 4 * ps + 7 * ps : 0);
            int ty = y + (cell - block) / 2;
            if (cs)
                text(&c, x + (cell - text_w(count, cs)) / 2, ty, count, cs, ink, 0);
            if (show_pct)
                text(&c, x + (cell - text_w(pct, ps)) / 2, ty + 7 * cs + 4 * ps, pct, ps, ink, 0);
        }
    for (int i = 1; i < n; i++) { /* thin white separators, as seaborn's linewidths */
        fill(&c, grid_x + i * cell, grid_y, 1, G, WHITE);
        fill(&c, grid_x, grid_y + i * cell, G, 1, WHITE);
    }
    /* class names: true down the left (right-aligned), predicted along the bottom */
    for (int i = 0; i < n; i++) {
        int w = text_w(names[i], ls), mid = i * cell + cell / 2;
        text(&c, grid_x - 12 - w, grid_y + mid - 7 * ls / 2, names[i], ls, INK, 0);
        fill(&c, grid_x - 5, grid_y + mid, 4, 1, INK);
        fill(&c, grid_x + mid, grid_y + G + 1, 1, 4, INK);
        if (rotate_cols)
            text(&c, grid_x + mid - 7 * ls / 2, grid_y + G + 10 + w - 1, names[i], ls, INK, 1);
        else
            text(&c, grid_x + mid - w / 2, grid_y + G + 10, names[i], ls, INK, 0);
    }
    /* axis captions */
    text(&c, margin, grid_y + G / 2 + text_w("True label", S) / 2, "True label", S, INK, 1);
    text(&c, cx - text_w("Predicted label", S) / 2, grid_y + G + 10 + col_h + 16,
         "Predicted label", S, INK, 0);
    /* colour bar with 0..100% ticks */
    for (int y = 0; y < G; y++)
        fill(&c, bar_x, grid_y + y, bar_w, 1, colour(1.0 - (double)y / (G > 1 ? G - 1 : 1)));
    for (int t = 0; t <= 4; t++) {
        char lab[8];
        snprintf(lab, sizeof lab, "%d%%", 25 * t);
        int y = grid_y + (G - 1) - t * (G - 1) / 4;
        fill(&c, bar_x + bar_w, y, 4, 1, INK);
        text(&c, bar_x + bar_w + 8, y - 7 * S / 2, lab, S, INK, 0);
    }
    free(names);
    int rc = write_png(png_path, &c, msg, msg_size);
    free(c.px);
    return rc;
}
