"""Length batching: group texts of similar token length so padding costs little.

A transformer batch is padded to its longest member, so a batch mixing a 10-token and a
256-token text spends 96 % of the first row's work on padding. Sorting by length first and
cutting each batch at a token budget (batch size x longest length) keeps padding small and
bounds the memory of one forward pass whatever the mix of lengths. The caller scatters each
batch's results back by index, so the output stays in input order.
"""

from __future__ import annotations

from collections.abc import Sequence


def length_batches(lengths: Sequence[int], max_tokens: int, max_batch: int) -> list[list[int]]:
    """Indices of `lengths` grouped into batches whose padded size fits `max_tokens`.

    Indices are sorted by length, longest first (ties by index, so the result is
    deterministic), and cut greedily: a batch grows while `len(batch) x longest <= max_tokens`
    and `len(batch) <= max_batch`. Longest first puts the largest batch shape at the start, so
    a batch that does not fit in memory fails at once rather than at the end of a long run.
    Every index appears exactly once. Raises ValueError for a negative or non-integer length,
    or one longer than `max_tokens` (no batch could hold it), naming its index.
    """
    if max_tokens < 1 or max_batch < 1:
        raise ValueError(f"max_tokens and max_batch must be >= 1; got {max_tokens}, {max_batch}")
    for index, length in enumerate(lengths):
        if isinstance(length, bool) or not isinstance(length, int) or length < 0:
            raise ValueError(f"lengths[{index}] must be a non-negative int, got {length!r}")
        if length > max_tokens:
            raise ValueError(
                f"lengths[{index}] = {length} exceeds max_tokens = {max_tokens}: "
                "no batch can hold it (truncate the text or raise max_tokens)"
            )
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    batches: list[list[int]] = []
    current: list[int] = []
    longest = 0
    for index in order:
        if current and (len(current) >= max_batch or (len(current) + 1) * longest > max_tokens):
            batches.append(current)
            current = []
        if not current:
            longest = lengths[index]
        current.append(index)
    if current:
        batches.append(current)
    return batches
