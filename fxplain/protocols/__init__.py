"""Whole protocols: pairs lists, a resumable result store, and runs in-process or on Dask.

* :func:`read_pairs`, :func:`make_pairs` (:mod:`.pairs`): which faces to compare;
* :func:`explain_pairs` (:mod:`.runner`): explain them all into a store;
* :func:`open_results` (:mod:`.resultset`): the table and each pair's explanation;
* :class:`RunStore` (:mod:`.store`): the store's layout (Zarr maps, Parquet rows).
"""

from .pairs import Pair, make_pairs, read_pairs
from .resultset import ResultSet, open_results
from .runner import explain_pairs
from .store import RunStore

__all__ = ["Pair", "ResultSet", "RunStore", "explain_pairs", "make_pairs", "open_results", "read_pairs"]
