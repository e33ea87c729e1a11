package io.cohort.drain;

/**
 * Counters of one job on one overlay, read without locking (each may be a moment old).
 *
 * @param frozen whether the job is frozen now
 * @param epoch epoch of the current or last freeze, -1 if never frozen
 * @param delivered packets handed to the sink so far (re-injected ones included)
 * @param recorded packets recorded in the current (or last) freeze
 * @param held packets held now, to be delivered on resume (after-marker and local)
 * @param heldDropped held packets dropped so far because the held queue was full
 * @param staleDropped packets and markers from peers dropped so far because they carried another
 *     network key than the job's here (another incarnation of the job)
 */
public record JobStats(
    boolean frozen,
    long epoch,
    long delivered,
    long recorded,
    long held,
    long heldDropped,
    long staleDropped) {}
