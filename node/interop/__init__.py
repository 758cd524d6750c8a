"""Interoperation with other trust-and-safety tools.

- :mod:`node.interop.formats`: the file formats of ``ccnode export`` and
  ``ccnode import`` (python-threatexchange's plain signal file, CSV, JSONL).
- :mod:`node.interop.feed`: a small synchronous reader of a node's entries
  (``Pull``), for tools that are not asyncio.
- :mod:`node.interop.pytx`: a python-threatexchange ``SignalExchangeAPI``
  extension (needs the ``interop`` extra: ``pip install '.[interop]'`` in a
  checkout; ccnode is not published on PyPI).
"""
