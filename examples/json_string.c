/* JSON string literals for the examples' machine-readable output (the CLI's --json, the
 * embedded and camera examples): quotes, backslashes and control characters escaped; labels
 * are UTF-8 already, so other bytes pass through. */
#include "cli.h"

void cli_json_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(f, "\\%c", *p);
        else if (*p < 0x20)
            fprintf(f, "\\u%04x", *p);
        else
            fputc(*p, f);
    }
    fputc('"', f);
}

/* %.9g: a float's exact value survives the round trip through the text. */
void cli_json_top(FILE *f, const morsel_class *top, int n)
{
    fputc('[', f);
    for (int i = 0; i < n; i++) {
        fprintf(f, "%s{\"index\": %d, \"label\": ", i ? ", " : "", top[i].index);
        cli_json_string(f, top[i].label);
        fprintf(f, ", \"probability\": %.9g}", (double)top[i].probability);
    }
    fputc(']', f);
}
