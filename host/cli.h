/* nhash CLI: shared helpers for the command files cli_*.c. */
#ifndef NHASH_CLI_H
#define NHASH_CLI_H

#include <stdio.h>

/* Each command: int nh_cli_<name>(int argc, char **argv), argv[0] is the command name.
 * Returns the process exit status. */
typedef int (*nh_cli_fn)(int argc, char **argv);

struct nh_cli_command {
    const char *name;
    nh_cli_fn fn;
    const char *summary;
};

#endif
