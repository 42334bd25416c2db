/* dist.c: the collectives over MPI (built with TX_MPI), or their one-process
 * forms. A program not started by mpirun never calls MPI at all. Each
 * function is written once: the MPI call when there are several processes,
 * else the one-process copy below it. */
#include "dist.h"

#include <stdlib.h>
#include <string.h>

#ifdef TX_MPI
#include <mpi.h>

#ifdef TX_DOUBLE
#define MPI_REAL_T MPI_DOUBLE
#else
#define MPI_REAL_T MPI_FLOAT
#endif
#endif

/* mpirun (Open MPI, MPICH, PMIx launchers) leaves one of these. */
static int under_mpirun(void) {
    static const char *const vars[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK"};
    for (size_t i = 0; i < sizeof vars / sizeof *vars; i++)
        if (getenv(vars[i])) return 1;
    return 0;
}

int tx_dist_built(void) {
#ifdef TX_MPI
    return 1;
#else
    return 0;
#endif
}

int tx_dist_init(tx_dist *d, tx_err *err) {
    d->rank = 0;
    d->size = 1;
    d->mpirun = under_mpirun();
    if (!d->mpirun) return TX_OK;
#ifdef TX_MPI
    (void)err;
    MPI_Init(NULL, NULL);
    MPI_Comm_rank(MPI_COMM_WORLD, &d->rank);
    MPI_Comm_size(MPI_COMM_WORLD, &d->size);
    return TX_OK;
#else
    d->mpirun = 0;
    return tx_error(err, TX_EINPUT, "started by mpirun, but this build has no MPI "
                                    "(built with NO_MPI=1, or without libopenmpi-dev)");
#endif
}

void tx_dist_finalize(const tx_dist *d) {
#ifdef TX_MPI
    /* MPI_Finalize need not wait for the others: the barrier makes what a
     * rank printed before this out before any rank can exit. */
    if (d->size > 1) MPI_Barrier(MPI_COMM_WORLD);
    if (d->mpirun) MPI_Finalize();
#else
    (void)d;
#endif
}

void tx_dist_max(const tx_dist *d, int *v, int n) {
#ifdef TX_MPI
    if (d->size > 1) MPI_Allreduce(MPI_IN_PLACE, v, n, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
#else
    (void)d, (void)v, (void)n;
#endif
}

/* In the gathers, mine may lie in all where this rank's part goes (in place). */
void tx_dist_allgather_double(const tx_dist *d, const double *mine, int n, double *all) {
#ifdef TX_MPI
    if (d->size > 1) {
        MPI_Allgather(mine == all + (size_t)d->rank * n ? MPI_IN_PLACE : mine, n, MPI_DOUBLE, all,
                      n, MPI_DOUBLE, MPI_COMM_WORLD);
        return;
    }
#endif
    (void)d;
    memmove(all, mine, (size_t)n * sizeof *all);
}

void tx_dist_allgatherv_double(const tx_dist *d, const double *mine, double *all,
                               const int *counts, const int *displs) {
#ifdef TX_MPI
    if (d->size > 1) {
        MPI_Allgatherv(mine == all + displs[d->rank] ? MPI_IN_PLACE : mine, counts[d->rank],
                       MPI_DOUBLE, all, counts, displs, MPI_DOUBLE, MPI_COMM_WORLD);
        return;
    }
#endif
    (void)d;
    memmove(all + displs[0], mine, (size_t)counts[0] * sizeof *all);
}

void tx_dist_allgatherv_real(const tx_dist *d, const tx_real *mine, tx_real *all,
                             const int *counts, const int *displs) {
#ifdef TX_MPI
    if (d->size > 1) {
        MPI_Allgatherv(mine == all + displs[d->rank] ? MPI_IN_PLACE : mine, counts[d->rank],
                       MPI_REAL_T, all, counts, displs, MPI_REAL_T, MPI_COMM_WORLD);
        return;
    }
#endif
    (void)d;
    memmove(all + displs[0], mine, (size_t)counts[0] * sizeof *all);
}

void tx_dist_gather_bytes(const tx_dist *d, const void *mine, int n, void *all) {
#ifdef TX_MPI
    if (d->size > 1) {
        MPI_Gather(mine, n, MPI_BYTE, all, n, MPI_BYTE, 0, MPI_COMM_WORLD);
        return;
    }
#endif
    (void)d;
    memmove(all, mine, (size_t)n);
}

void tx_dist_gatherv_real(const tx_dist *d, const tx_real *mine, tx_real *all,
                          const int *counts, const int *displs) {
#ifdef TX_MPI
    if (d->size > 1) {
        MPI_Gatherv(mine, counts[d->rank], MPI_REAL_T, all, counts, displs, MPI_REAL_T, 0,
                    MPI_COMM_WORLD);
        return;
    }
#endif
    (void)d;
    memmove(all + displs[0], mine, (size_t)counts[0] * sizeof *all);
}

void tx_dist_alltoallv_real(const tx_dist *d, const tx_real *send, const int *scounts,
                            const int *sdispls, tx_real *recv, const int *rcounts,
                            const int *rdispls) {
#ifdef TX_MPI
    if (d->size > 1) {
        MPI_Alltoallv(send, scounts, sdispls, MPI_REAL_T, recv, rcounts, rdispls, MPI_REAL_T,
                      MPI_COMM_WORLD);
        return;
    }
#endif
    (void)d, (void)rcounts;
    memmove(recv + rdispls[0], send + sdispls[0], (size_t)scounts[0] * sizeof *recv);
}
