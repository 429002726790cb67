"""Messages between `agent.py` (our venv) and `server.py` (.venv-official): length-prefixed pickles.

The two sides run different numpy majors (2.x here, 1.26 there) whose array pickles name different
modules, so arrays cross as (dtype, shape, bytes) triples and only builtin types are pickled.
This module imports nothing but the standard library and numpy: both sides import it.
"""

from __future__ import annotations

import pickle
import struct
from typing import Any, BinaryIO

import numpy as np

_ARRAY = "__ndarray__"
_HEADER = struct.Struct("<Q")


def encode(tree: Any) -> Any:
    """`tree` with every numpy array or scalar replaced by a builtin triple."""
    if isinstance(tree, dict):
        return {k: encode(v) for k, v in tree.items()}
    if isinstance(tree, (list, tuple)):
        return type(tree)(encode(v) for v in tree)
    if isinstance(tree, (np.ndarray, np.generic)):
        array = np.ascontiguousarray(tree)
        return (_ARRAY, array.dtype.str, array.shape, array.tobytes())
    return tree


def decode(tree: Any) -> Any:
    if isinstance(tree, tuple) and len(tree) == 4 and tree[0] == _ARRAY:
        _, dtype, shape, data = tree
        return np.frombuffer(data, np.dtype(dtype)).reshape(shape).copy()
    if isinstance(tree, dict):
        return {k: decode(v) for k, v in tree.items()}
    if isinstance(tree, (list, tuple)):
        return type(tree)(decode(v) for v in tree)
    return tree


def send(stream: BinaryIO, message: Any) -> None:
    data = pickle.dumps(encode(message), protocol=4)
    stream.write(_HEADER.pack(len(data)) + data)
    stream.flush()


def receive(stream: BinaryIO) -> Any:
    """The next message; EOFError when the other side has closed the pipe (or died)."""
    header = stream.read(_HEADER.size)
    if len(header) < _HEADER.size:
        raise EOFError("the pipe was closed")
    size = _HEADER.unpack(header)[0]
    data = stream.read(size)
    if len(data) < size:
        raise EOFError("the pipe was closed mid-message")
    return decode(pickle.loads(data))
