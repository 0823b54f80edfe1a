"""The size limit of the book's helpers: what they refuse to build or train rather than run out of memory.

A helper that would allocate more than :data:`MAX_BYTES` (4 GiB) for one thing it builds — a net's
parameters (:func:`resbook.models.mlp`), a generated data set (:mod:`resbook.data`), the minibatch
indices of a run (:func:`resbook.training.batch_indices`), or the estimated tensors of a training run
(:func:`resbook.training.train`, :func:`resbook.batched.train_together`) — raises ``ValueError``
before allocating anything. The book's largest experiment (``full`` profile) stays below 1% of it; the
limit is there so that a typo (``width=10**6``) fails in a second with a clear message instead of
swapping the machine or being killed by the kernel.
"""
from __future__ import annotations

MAX_BYTES = 4 * 2**30  # 4 GiB


def check_bytes(what: str, n_bytes: int, advice: str) -> None:
    """Raise ``ValueError`` if ``what`` would take more than :data:`MAX_BYTES`; ``advice`` says what to lower."""
    if n_bytes > MAX_BYTES:
        raise ValueError(f"{what} would take about {n_bytes / 2**30:,.1f} GiB, more than resbook's limit of "
                         f"{MAX_BYTES / 2**30:g} GiB: {advice}")
