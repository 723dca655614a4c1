/* The smallest useful Morsel program: classify one image, print the best class.
 * Build against an installed Morsel:  cc minimal.c $(pkg-config --cflags --libs morsel)
 * usage: minimal MODEL.morsel IMAGE */
#include <stdio.h>

#include <morsel.h>

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: %s MODEL.morsel IMAGE\n", argv[0]);
        return 2;
    }
    morsel_model *model = NULL;
    morsel_context *ctx = NULL;
    morsel_error err = {0};
    morsel_class top[1];
    int n = 0, rc = 1;
    if (morsel_model_open_file(argv[1], &model, &err) == MORSEL_OK &&
        morsel_context_create(model, &ctx, &err) == MORSEL_OK &&
        morsel_classify_file(ctx, argv[2], 1, top, &n, NULL, &err) == MORSEL_OK) {
        printf("%s %d %.6f\n", top[0].label, top[0].index, (double)top[0].probability);
        rc = 0;
    } else {
        fprintf(stderr, "%s: %s\n", morsel_status_name(err.status), err.message);
    }
    morsel_context_destroy(ctx);
    morsel_model_close(model);
    return rc;
}
