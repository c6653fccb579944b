"""iFAN (paper 4) on SynthFaces split into one data set per task: the miniature of its tables.

    python train.py --config configs/ifan_synthfaces.py:quick

Two tasks by default (2T: facial landmarks + face parsing), three with ``:3t`` (+ emotion;
``:quick,3t`` for both). Each task has its own SynthFaces data set, labelled for that task
alone (the other labels masked) and drawn from its own domain and seed, so no face is
shared and the data sets differ as MTFL, Helen and BNU do: landmarks on
``grayscale_lowres`` faces (pose, blur, grey), parsing on ``studio`` faces, emotion on
``studio`` faces of another seed. The model is iFAN's FC-DenseNet (3 layers per block,
growth 12, 7x7 stem of 48) with landmark, parsing and emotion decoders, re-encoders and
the task integrator (eq. 4, the re-encoded maps summed), ITER = 2, one BatchNorm set per
data set; training is Algorithm 1: stage 1 task by task at ITER 0, stage 2 one batch of
each data set in turn through all iterations, RMSprop, the loss of eq. 5.

``:quick`` (the miniature tables) works at 32 px with 3 dense blocks each way (so the
landmark decoder still reads 8x8 and the emotion decoder 4x4 features, as at 128 px with
5 blocks), a 24-filter stem and 48-filter upsampling, 384 training faces per data set,
batch 16, one pre-training epoch per data set and two fine-tuning epochs; the default is
the paper's 128 px, 5 blocks and schedule. Tables of docs/ifan.md, three seeds each:

    python -m affectjax.sweep --config configs/ifan_synthfaces.py:quick --seeds 0,1,2 \\
        --grid ifan.num_iterations=0,2 --metric score --jobs 2 --workdir runs/sweeps/ifan_2t
    python -m affectjax.sweep --config configs/ifan_synthfaces.py:quick --seeds 0,1,2 \\
        --grid ifan.tasks=landmarks,parsing --set ifan.num_iterations=0 --metric score \\
        --jobs 2 --workdir runs/sweeps/ifan_single
    python -m affectjax.sweep --config configs/ifan_synthfaces.py:quick --seeds 0,1,2 \\
        --grid ifan.reencoders=False --metric score --jobs 2 \\
        --workdir runs/sweeps/ifan_no_reencoders

Measured (2-core CPU, seeds 0-2, mean +- std): parsing's overall F-score is 0.0 +- 0.0 %
at ITER 0 and 29.9 +- 6.3 % at ITER 2 (0.0 / 21.2 / 29.9 % at its iterations 0 / 1 / 2);
the landmarks stay at the mean shape (NME 11.5 %; the mean shape itself 11.3 %). One
``:quick`` run takes about 5 min (ITER 0: about 2.5 min).
"""

import ml_collections

from configs import common

FLAGS = ("full", "quick", "3t")


def _source(domain: str, seed: int, size: int, sizes: dict, batch_size: int) -> dict:
    return dict(name="synthfaces", data_dir="~/tensorflow_datasets", image_size=size,
                batch_size=batch_size,
                augment=dict(enabled=False),
                builder_kwargs=dict(domain=domain, seed=seed, image_size=size, sizes=sizes))


def get_config(arg: str = "full") -> ml_collections.ConfigDict:
    flags = set(arg.split(",")) if arg else {"full"}
    if not flags <= set(FLAGS):
        raise ValueError(f"config argument {arg!r}; give comma-separated flags from "
                         f"{list(FLAGS)}")
    quick = "quick" in flags
    size, blocks = (32, 3) if quick else (128, 5)
    sizes = dict(train=384, validation=200) if quick else dict(train=8000, validation=1000)
    c = common.base_config()
    c.method = "ifan"
    c.model = ml_collections.ConfigDict(dict(
        name="ifan", num_blocks=blocks, layers_per_block=3, growth_rate=12,
        stem_features=24 if quick else 48, upsample_features=48 if quick else 128, num_landmarks=5, num_parsing_classes=11,
        num_emotions=8, heatmap_radius=5.0 * size / 128, decoder_dropout=0.3))
    c.ifan = ml_collections.ConfigDict(dict(
        tasks="landmarks,parsing,emotion" if "3t" in flags else "landmarks,parsing",
        num_iterations=2,  # ITER: iterations 0..ITER, the loss summed over them (eq. 5).
        image_size=size,  # every data set is resized to it (landmarks scaled along).
        task_batchnorm=True,  # one BatchNorm set per data set (False: shared, ablation).
        reencoders=True,  # False: raw predictions resized, no re-encoder (Sec. 4.3.2).
        integration="sum",  # sum (eq. 4) | concat (the authors' released code).
        initial_feedback="zeros",  # zeros (eq. 4: iteration 0 = f_S) | mean (their code).
        loop="unroll",  # unroll | scan: how the jitted step runs the iterations.
        landmark_prior="mean",  # the landmark regressor starts at the mean shape | none.
        pretrain_epochs=1 if quick else 30,  # stage 1, per data set (paper: 30).
        pretrain_learning_rate=1e-3,
        order="alternate", order_epochs=1,  # set per stage by the pipeline.
        sources=dict(  # one data set per task; paper batch sizes 64 / 24 / 96.
            landmarks=_source("grayscale_lowres", 101, size, sizes, 16 if quick else 64),
            parsing=_source("studio", 202, size, sizes, 16 if quick else 24),
            emotion=_source("studio", 303, size, sizes, 16 if quick else 96))))
    c.batch_size = 16  # images/s in the log; each data set has its own batch size.
    c.eval_batch_size = 50
    c.optimizer.name = "rmsprop"
    c.optimizer.schedule = "exponential"  # 1e-3 -> 1e-6 over stage 2 (the paper).
    c.optimizer.end_learning_rate = 1e-6
    c.phases.full.epochs = 2 if quick else 200
    c.phases.full.learning_rate = 1e-3
    # The landmark regressor (a Dense over the flattened 8x8 features, 8k-33k inputs) at
    # 1e-6: RMSprop moves every weight by about the learning rate, so at 1e-3 its output
    # jumps by inputs x 1e-3 per step (measured on :quick, 80 steps of landmarks alone:
    # NME 14.5 at x1, 0.41 at x0.1, 0.127 at x0.01, 0.117 at x0.001; the mean shape 0.116).
    c.phases.full.lr_multipliers = dict(decoder_landmarks=1e-3)
    c.max_plot_points = 0
    c.log_every_steps = 20
    return c
