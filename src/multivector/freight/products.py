"""Sparse products with the batch's ``[columns, N]`` arrays, taken the cheapest way for its size.

SciPy's product of a CSR matrix with a dense block visits each stored element once per block, at a cost
per element about four times that of a product with one vector (it calls an ``axpy`` per element). A
single run and its counterfactual (N = 2) therefore pay more for a block than for its columns one by
one, while a large batch pays less. Either way every sum is taken in the same order, so the numbers
are the same to the bit; only the time differs.
"""

from __future__ import annotations

import numpy as np
from scipy import sparse

#: Up to how many columns a block is multiplied column by column (measured on the route-resource
#: incidence, 24,000 stored elements: 43 against 78 µs at two columns, 64 against 79 at three, 86
#: against 80 at four).
COLUMN_BY_COLUMN = 3
#: The widest block :func:`matmul_each` puts its operands side by side in (a run and its counterfactual,
#: three operands: six columns, one block product instead of six vector products).
NARROW_BLOCK = 8


def matmul(matrix: sparse.csr_matrix, x: np.ndarray) -> np.ndarray:
    """``matrix @ x`` for a dense ``x`` (``[columns]`` or ``[columns, N]``)."""
    if x.ndim != 2 or not 1 < x.shape[1] <= COLUMN_BY_COLUMN:
        return matrix @ x
    out = np.empty((matrix.shape[0], x.shape[1]))
    for j in range(x.shape[1]):
        out[:, j] = matrix @ x[:, j]
    return out


def matmul_each(matrix: sparse.csr_matrix, operands: list[np.ndarray]) -> list[np.ndarray]:
    """``matrix @ x`` for each ``x`` of ``operands`` (``[columns, N]`` each): side by side in one block
    while the block stays narrow (a single run's operands), one by one in a large batch (side by side
    would copy them all, and the copy's fresh pages cost more than the product saves)."""
    n = operands[0].shape[1]
    if len(operands) == 1 or n * len(operands) > NARROW_BLOCK:
        return [matmul(matrix, x) for x in operands]
    out = matmul(matrix, np.hstack(operands))
    return [out[:, i * n:(i + 1) * n] for i in range(len(operands))]
