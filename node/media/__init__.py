"""Turning files into hashes. Audio fingerprints (Chromaprint-compatible,
:mod:`node.media.audio`) live here; decoding with PyAV happens in this
package and nowhere else. Every function here is plain, synchronous and
CPU-bound: the node runs them in an executor, never on its event loop.
"""
