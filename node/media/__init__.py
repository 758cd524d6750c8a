"""Turning files into hashes: images (PDQ, :mod:`node.media.image`) and
videos (vPDQ, :mod:`node.media.video`).

Decoding with Pillow and PyAV happens in this package and nowhere else in
the node (a layout test checks it). Every function here is plain,
synchronous and CPU-bound: the node runs them in an executor, never on its
event loop.
"""
