"""CMU-MultimodalSDK computational sequences (``.csd``): the CMU-MOSEI segment labels.

A ``.csd`` file is HDF5, written by the SDK's ``write_CSD``
(``mmsdk/mmdatasdk/computational_sequence/file_ops.py`` in A2Zadeh/CMU-MultimodalSDK)::

    <root name>/                      one top-level group, e.g. "All Labels"
        data/<video_id>/features      float (n, d): one row per segment of the video
        data/<video_id>/intervals     float (n, 2): [start, end] of each row, in seconds
        metadata/<key>                (1,) variable-length str, JSON-encoded

The SDK reads the first top-level group as the root (``read_CSD``); so does this module.
For ``CMU_MOSEI_Labels.csd`` (root "All Labels") the SDK's CMU-MOSEI README gives the
columns of ``features`` as ``[sentiment, happy, sad, anger, surprise, disgust, fear]``:
sentiment in [-3, 3], each emotion an intensity in [0, 3], and "emotion > 0" as the binary
"emotion present" label (`MOSEI_LABEL_COLUMNS`).

h5py is imported only here, when a ``.csd`` or MUStARD's visual HDF5 is read; without it
the readers raise an ImportError saying ``pip install -e ".[multimodal]"``.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from affectjax.data.readers import _common as c

MOSEI_LABEL_COLUMNS: tuple[str, ...] = (
    "sentiment", "happy", "sad", "anger", "surprise", "disgust", "fear")
Segments = dict[str, tuple[np.ndarray, np.ndarray]]  # video id -> (intervals, features)


def import_h5py(what: str) -> Any:
    """Imports h5py, or raises an ImportError naming ``what`` needs it and how to install it."""
    try:
        import h5py  # pylint: disable=import-outside-toplevel
    except ImportError:
        raise ImportError(f"{what} needs h5py, which is not installed: "
                          'pip install -e ".[multimodal]"') from None
    return h5py


def open_hdf5(path: str, what: str):
    """Opens an HDF5 file read-only; a missing or non-HDF5 file is one `DataFormatError`."""
    h5py = import_h5py(what)
    c.require_file(path, what)
    try:
        return h5py.File(path, "r")
    except OSError as e:
        raise c.DataFormatError(f"{path}: not an HDF5 file ({what}): {e}") from None


def read_csd(path: str, width: int | None = None) -> tuple[str, Segments]:
    """Reads every video of a computational sequence into memory.

    Args:
        path: the ``.csd`` file.
        width: the expected number of feature columns (``None`` accepts any, equal in all
            videos).

    Returns:
        ``(root_name, {video_id: (intervals float64 (n, 2), features float64 (n, d))})``.

    Raises:
        DataFormatError: missing file, not HDF5, no root group with ``data``, or a video whose
            ``features``/``intervals`` is missing or has the wrong shape (the message names
            the file and the HDF5 path of the field).
    """
    path = os.fspath(path)
    what = "CMU-MultimodalSDK computational sequence (.csd)"
    with open_hdf5(path, what) as f:
        roots = list(f.keys())
        if not roots or not hasattr(f[roots[0]], "keys") or "data" not in f[roots[0]]:
            raise c.DataFormatError(
                f"{path}: expected a root group holding 'data' (e.g. 'All Labels/data/"
                f"<video_id>/features'); the file's top level has {roots or 'nothing'}")
        root = roots[0]
        data = f[root]["data"]
        out = {}
        for video in data:
            group = data[video]
            arrays = {}
            for field in ("features", "intervals"):
                name = f"{root}/data/{video}/{field}"
                if not hasattr(group, "keys") or field not in group:
                    raise c.DataFormatError(f"{path}: field {name!r} is missing")
                arrays[field] = np.asarray(group[field][()], np.float64)
            feats, intervals = arrays["features"], arrays["intervals"]
            if feats.ndim != 2 or (width is not None and feats.shape[1] != width):
                want = f"(n, {width})" if width is not None else "(n, d)"
                raise c.DataFormatError(
                    f"{path}: field '{root}/data/{video}/features' has shape {feats.shape}; "
                    f"expected {want}")
            if intervals.shape != (len(feats), 2):
                raise c.DataFormatError(
                    f"{path}: field '{root}/data/{video}/intervals' has shape "
                    f"{intervals.shape}; expected ({len(feats)}, 2) [start, end]")
            if width is None:
                width = feats.shape[1]
            out[str(video)] = (intervals, feats)
    return root, out


def match_segment(intervals: np.ndarray, start: float, end: float, tolerance: float) -> int | None:
    """Row of the interval closest to ``[start, end]`` within ``tolerance`` seconds, or None."""
    gap = np.abs(intervals - np.array([start, end]))
    ok = (gap <= tolerance).all(axis=1)
    if not ok.any():
        return None
    return int(np.argmin(np.where(ok, gap.sum(axis=1), np.inf)))
