/* Shared by the CLI tests: run a shell command and capture what it prints. */
#ifndef NH_TESTS_CLI_RUN_H
#define NH_TESTS_CLI_RUN_H

/* Run cmd through the shell; its stdout comes back as a malloc'd string (the caller frees
 * it), *rc is its exit status (-1 when it did not exit normally). Fails the test when the
 * command cannot be started. */
char *nh_test_capture(const char *cmd, int *rc);

#endif
