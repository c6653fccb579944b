"""affectjax: multi-task affective computing in pure-functional JAX/Flax.

Submodules (imported on demand, so `import affectjax.losses` stays light):

* `affectjax.losses`     CCC, weighted CE, BCE, KL consensus, CCT and MT-EmotiEffNet losses.
* `affectjax.schedules`  the CCT consensus ramp and per-epoch learning-rate decay.
* `affectjax.balancing`  loss balancers EW, UW, DWA, GradNorm, EMA, DWEMA, REMA.
* `affectjax.metrics`    one-shot and streaming metrics (CCC, F1, WAcc, NME, ...).
* `affectjax.tuning`     AU-threshold and blending-weight search.
* `affectjax.models`     EfficientNet, ResNet-18 and task heads (`models.create`).
* `affectjax.data`       SynthFaces, SynthAffect, real-data readers and the input pipeline.
* `affectjax.train`      train state, step factories, the training loop.
"""

__version__ = "0.1.0"
