/* commands.h: the subcommands of the `tapeformer` program, one file each in
 * cli/. Each takes its arguments with argv[0] its own name and returns the
 * process exit code (0 success, 1 a check failed or an output could not be
 * written, 2 bad input). gradcheck exists in the double build only. */
#ifndef TX_COMMANDS_H
#define TX_COMMANDS_H

int tx_cmd_gradcheck(int argc, char **argv);
int tx_cmd_train(int argc, char **argv);
int tx_cmd_generate(int argc, char **argv);
int tx_cmd_sample(int argc, char **argv);
int tx_cmd_score(int argc, char **argv);
int tx_cmd_eval(int argc, char **argv);
int tx_cmd_export(int argc, char **argv);
int tx_cmd_attention(int argc, char **argv);
int tx_cmd_plot(int argc, char **argv);

#endif
