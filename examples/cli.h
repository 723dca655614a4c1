/* The `morsel` command line tool: shared helpers of its sub-commands. */
#ifndef MORSEL_CLI_H
#define MORSEL_CLI_H

#include <stdio.h>

#include "morsel.h"

/* The model used when --model is not given: $MORSEL_MODEL, else the shipped default. */
const char *cli_default_model(void);

/* Opens a model or prints why not (returns NULL). */
morsel_model *cli_open_model(const char *path);

/* Writes s as a JSON string literal. */
void cli_json_string(FILE *f, const char *s);

/* OpenBLAS's thread count (an OpenBLAS extension, hence declared here). */
void cli_set_threads(int n);

int cli_classify(int argc, char **argv);
int cli_info(int argc, char **argv);
int cli_bench(int argc, char **argv);
int cli_eval(int argc, char **argv);

#endif
