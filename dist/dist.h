/* dist.h: training on several processes: which process this is, and the
 * collective operations the trainer needs, over MPI when the program was
 * started by mpirun (and built with MPI), else the trivial ones of a single
 * process. Every collective takes its operands in rank order and does no
 * arithmetic of its own: sums are the caller's, in an order it chooses, so
 * the results cannot depend on the number of processes or MPI's algorithms. */
#ifndef TX_DIST_H
#define TX_DIST_H

#include "../core/base.h"

typedef struct tx_dist {
    int rank, size; /* this process, and how many there are (1: no MPI) */
    int mpirun;     /* started by mpirun (even with one process) */
} tx_dist;

/* Joins the job mpirun started (MPI_Init) if the environment says there is
 * one, else sets rank 0 of 1 without touching MPI. TX_EINPUT if started by
 * mpirun but built without MPI. Call once; end with tx_dist_finalize, which
 * waits for every process (print a run's last messages before it). */
int tx_dist_init(tx_dist *d, tx_err *err);
void tx_dist_finalize(const tx_dist *d);
/* Whether MPI was built in (tapeformer --version says so). */
int tx_dist_built(void);

/* The largest of every process's v[0..n) (flags, error codes), in v. */
void tx_dist_max(const tx_dist *d, int *v, int n);
/* Rank r's n doubles into all[r·n .. r·n + n) on every process. */
void tx_dist_allgather_double(const tx_dist *d, const double *mine, int n, double *all);
/* Rank r's counts[r] doubles into all + displs[r] on every process. */
void tx_dist_allgatherv_double(const tx_dist *d, const double *mine, double *all,
                               const int *counts, const int *displs);
/* The same for reals (the parameters after each rank's update). */
void tx_dist_allgatherv_real(const tx_dist *d, const tx_real *mine, tx_real *all,
                             const int *counts, const int *displs);
/* Rank r's n bytes into all[r·n .. r·n + n) on rank 0 only (error messages). */
void tx_dist_gather_bytes(const tx_dist *d, const void *mine, int n, void *all);
/* To rank 0 only (the optimizer state for a checkpoint); all is read only
 * on rank 0, and may be NULL elsewhere. */
void tx_dist_gatherv_real(const tx_dist *d, const tx_real *mine, tx_real *all,
                          const int *counts, const int *displs);
/* Every rank sends scounts[q] reals from send + sdispls[q] to rank q and
 * receives rcounts[s] from rank s into recv + rdispls[s] (the gradient
 * shards). */
void tx_dist_alltoallv_real(const tx_dist *d, const tx_real *send, const int *scounts,
                            const int *sdispls, tx_real *recv, const int *rcounts,
                            const int *rdispls);

#endif
