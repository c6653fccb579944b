"""Inference on new faces: ``predict.load(run_dir)`` and ``python -m affectjax.predict``.

    from affectjax import predict
    predictor = predict.load("runs/quickstart")
    out = predictor(images)          # dict of NumPy arrays, one row per image
    rows = predictor.rows(out)       # flat dicts for CSV/JSONL

`affectjax.predict.predictor` documents the outputs and the preprocessing; the command
line (`affectjax.predict.__main__`) reads images, folders and videos.
"""

from affectjax.predict.predictor import DEFAULT_BATCH_SIZE, Predictor, load

__all__ = ["DEFAULT_BATCH_SIZE", "Predictor", "load"]
