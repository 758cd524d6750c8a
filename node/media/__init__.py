"""Turning files into hashes: images (PDQ, :mod:`node.media.image`), videos
(vPDQ, :mod:`node.media.video`) and audio (Chromaprint-compatible
fingerprints, :mod:`node.media.audio`).

Decoding with Pillow and PyAV happens in this package and nowhere else in
the node (a layout test checks it). Every function here is plain,
synchronous and CPU-bound: the node runs them in an executor, never on its
event loop.
"""
