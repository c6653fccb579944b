"""affectjax: multi-task affective computing in pure-functional JAX/Flax.

Submodules (imported on demand, so `import affectjax.losses` stays light):

* `affectjax.losses`     CCC, weighted CE, BCE, KL consensus, CCT and MT-EmotiEffNet losses.
* `affectjax.schedules`  the CCT consensus ramp and per-epoch learning-rate decay.
* `affectjax.balancing`  loss balancers EW, UW, DWA, GradNorm, EMA, DWEMA, REMA.
* `affectjax.metrics`    one-shot and streaming metrics (CCC, F1, WAcc, NME, ...).
* `affectjax.tuning`     AU-threshold and blending-weight search.
* `affectjax.labels`     the ABAW expression and AU names, defined once.
* `affectjax.registry`   the one lookup (and unknown-name error) of every name registry.
* `affectjax.ensemble`   M members of any flax model as one stacked pytree, vmapped.
* `affectjax.models`     EfficientNet, ResNet-18 and task heads (`models.create`).
* `affectjax.convert`    timm / torchvision weights -> flax variables.
* `affectjax.data`       SynthFaces, SynthAffect, real-data readers and the input pipeline.
* `affectjax.train`      the generic trainer: `Method`, train state, steps, the loop.
* `affectjax.methods`    one package per paper and the registry `METHODS`.
* `affectjax.sweep`      seeds x a grid of overrides -> mean ± std tables.
* `affectjax.bench`      speed against the PyTorch reference.

Imports only go down: the pure library (losses ... registry, ensemble) <- models, data <- train <-
methods <- entry points (`tests/test_layout.py`).
"""

__version__ = "0.1.0"
