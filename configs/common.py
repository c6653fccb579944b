"""Shared defaults of every training config (import with ``from configs import common``).

Every field is documented here once; experiment files override what they change.
"""

import ml_collections

from affectjax.data import pipeline


def base_config() -> ml_collections.ConfigDict:
    """The defaults: MT-EmotiEffNet on SynthFaces, Adam, one full phase."""
    c = ml_collections.ConfigDict()
    c.seed = 0  # model init, data order, augmentation and dropout all derive from it.
    c.init_seed = -1  # >= 0: the model's initial weights from this seed instead of `seed`.
    c.method = "emotieffnet"  # key of affectjax.methods.METHODS.
    # Model: affectjax.models.create(name, **rest).
    c.model = ml_collections.ConfigDict(dict(
        name="emotieffnet", backbone="tf_efficientnet_b0", num_expressions=8,
        width_multiplier=1.0, depth_multiplier=1.0, drop_rate=0.2))
    c.data = pipeline.default_config()  # see affectjax.data.pipeline.default_config.
    c.data.augment.enabled = False  # MT-EmotiEffNet trains without augmentation.
    c.batch_size = 48  # global batch, split over all devices.
    c.eval_batch_size = 0  # 0 = batch_size.
    c.steps_per_epoch = 0  # 0 = training examples // batch_size.
    # Phases run in this order; each trains `trainable` ("all" or comma-separated
    # parameter groups of the method, e.g. "head") for `epochs` at `learning_rate`.
    c.phase_order = ("full",)
    c.phases = ml_collections.ConfigDict(dict(
        full=dict(epochs=6, learning_rate=1e-4, trainable="all")))
    c.optimizer = ml_collections.ConfigDict(dict(
        name="adam",  # adam | adamw | sgd | rmsprop
        b1=0.9, b2=0.999, eps=1e-8, momentum=0.9, weight_decay=0.0,
        sam_rho=0.05,  # SAM neighbourhood radius (0 = plain optimizer).
        grad_clip_norm=0.0,  # 0 = no clipping.
        schedule="constant",  # constant | cosine | exponential_epoch | exponential
        decay=0.95,  # per-epoch factor of exponential_epoch.
        end_learning_rate=0.0,  # the final rate of the exponential schedule.
        warmup_steps=0,
        balancer_learning_rate=1e-3))  # for balancers with trainable parameters (uw).
    c.balancer = ml_collections.ConfigDict(dict(name="ew"))  # + the balancer's kwargs.
    c.loss = ml_collections.ConfigDict(dict(
        tasks="va+expr",  # the trained tasks; "expr": expressions only (paper 1, Table 2).
        class_weights=True,  # w_c = max_k N_k / N_c from the training split (eq. 1).
        ccc_ddof=0,  # 1 = the authors' unbiased CCC variances.
        ccc_eps=0.0))
    c.init_from = ""  # directory of a converted checkpoint (python -m affectjax.convert).
    c.log_every_steps = 50
    c.eval_every_epochs = 1
    c.checkpoint_every_steps = 500  # also at every phase end,
    c.checkpoint_every_epochs = 1  # and at the end of every this many epochs.
    c.keep_checkpoints = 2
    c.max_plot_points = 4000  # valence/arousal points kept for the scatter plot.
    c.progress_bar = True
    c.num_devices = 0  # devices of the data-parallel mesh (0 = all).
    c.distributed = False  # True: jax.distributed.initialize() first (multi-host).
    c.coordinator_address = ""  # multi-host without auto-detection: "host:port" of process 0,
    c.num_processes = -1  # the number of processes,
    c.process_id = -1  # and this process's index (-1 / "" = auto-detect).
    return c


def cct_config(*, epochs: int, num_networks: int = 3, consensus: bool = True):
    """The CCT recipe (paper 2) on `base_config`: the ``cct`` section and the optimizer.

    Adam with the classifier at 10x the backbone's learning rate (the paper: 1e-2 and
    1e-3), x0.95 per epoch, no SAM; the consensus ramp of eq. 4 with e_r = 0.9 of the
    epochs; the authors' augmentation (horizontal flip, colour jitter 0.25 with
    probability 0.5, random affine translate 0.1 and scale 1-1.25), left off here: a
    config turns it on with ``c.data.augment.enabled = True``.
    """
    c = base_config()
    c.method = "cct"
    c.cct = ml_collections.ConfigDict(dict(
        task="expr",  # expr (the paper) | au | va (model.num_classes 12 | 2).
        num_networks=num_networks,  # 1-4: the members trained together.
        strategy="vmap",  # vmap | unroll: how one jitted step runs the members.
        consensus=consensus,  # False: CE only (paper Table 7).
        lambda_max=0.9, beta=4.0,  # eq. 4 (the authors' code: beta 0.65).
        ramp_epochs=0.9 * epochs,  # e_r (the authors' code: 0.9 of the epochs).
        clamp=True,  # False: the authors' unclamped ramp (lambda dips after e_r).
        scale=1.0,  # 0.33: the authors' code scales both terms.
        reinit_heads=True))  # with init_from: a fresh classifier per member.
    c.data.augment.update(enabled=False, flip_prob=0.5, crop_prob=1.0, scale=0.25,
                          translate=0.1, jitter_prob=0.5, brightness=0.25, contrast=0.25,
                          saturation=0.25)
    c.phases.full.epochs = epochs
    c.phases.full.lr_multipliers = dict(head=10.0)
    c.optimizer.sam_rho = 0.0
    c.optimizer.schedule = "exponential_epoch"
    c.optimizer.decay = 0.95
    return c


def fusion_config(*, epochs: int) -> ml_collections.ConfigDict:
    """Weakly-supervised multimodal MTL (paper 3) on `base_config`: the ``fusion`` section.

    Adam (beta 0.9, 0.999) with weight decay 1e-5 as L2 (PyTorch's ``Adam(weight_decay)``,
    the paper's Sec. 6.1), no SAM, constant learning rate; EF-LF-LSTM over text, audio and
    visual sequences; no augmentation (sequences pass the input pipeline unchanged).
    """
    c = base_config()
    c.method = "fusion"
    c.model = ml_collections.ConfigDict(dict(
        name="fusion",
        fusion="eflf",  # ef | lf | eflf
        encoder="lstm",  # avg | lstm | transformer
        modalities="text+audio+visual",  # a subset reads only those inputs
        hidden_dim=300,  # EF: AVG hidden layer / LSTM units per direction / Transformer width
        lf_hidden_dims=(300, 128, 128),  # LF: the same per modality (text, audio, visual)
        num_heads=5, lf_num_heads=(4, 2, 2),  # Transformer heads (EF, LF per modality)
        ff_dim=512, lf_ff_dims=(300, 128, 64),  # Transformer feed-forward widths
        num_layers=2,  # Transformer layers
        dropout=0.1))
    c.data.name = "synthaffect"
    c.data.augment.enabled = False
    c.fusion = ml_collections.ConfigDict(dict(
        tasks="emotion",  # any of emotion, sentiment, sarcasm, joined by "+"
        main_task="",  # whose score picks the best checkpoint ("" = the first task)
        num_emotions=4,  # emotion head width: 4 (IEMOCAP) or 6 (CMU-MOSEI)
        emotion_names=(),  # names in the metrics' keys (() = indices)
        sentiment_loss="binary",  # binary (CE on sentiment > 0) | regression (L1 on [-3, 3])
        weights=dict(emotion=1.0, sentiment=1.0, sarcasm=1.0),  # lambda_j of eq. 2
        weak_weight="confidence",  # weak entries weigh the teacher's accuracy | "one"
        # Weak labels per task: {"file": PATH} or a teacher {"data": {...}, "model": {...},
        # "seed", "epochs", "learning_rate", "batch_size", "num_emotions"}
        # (affectjax.methods.fusion.teachers).
        weak=ml_collections.ConfigDict(),
        weak_dir=""))  # "" = weak_labels/ next to the prepared data set
    c.batch_size = 128
    c.phases.full.epochs = epochs
    c.phases.full.learning_rate = 5e-4
    c.optimizer.sam_rho = 0.0
    c.optimizer.weight_decay = 1e-5
    c.log_every_steps = 20
    return c


def balance_config(*, epochs: int) -> ml_collections.ConfigDict:
    """The EMA loss-balancing study (paper 5) on `base_config`: the ``mtl`` method.

    Hard parameter sharing (``model.backbone`` + a head per task), Adam, no SAM, one full
    phase; every balancer starts from the same weights (``init_seed`` 0) while ``seed``
    drives the data order and dropout. ``balancer.<name>`` sub-sections hold each
    balancer's own hyper-parameters (the paper: beta 0.1 for Aff-Wild2 and AffectNet, 0.2
    for CelebA; DWA's T = 2; GradNorm's alpha = 1.5; UW's s_k from -0.5; the EMA family's
    floor eps on the moving average, 1e-8, not in the paper), so a sweep over
    ``balancer.name`` needs no other change.
    """
    c = base_config()
    c.method = "mtl"
    c.init_seed = 0
    c.model = ml_collections.ConfigDict(dict(
        name="hard_sharing", backbone="resnet50", backbone_kwargs=dict(), dropout=0.0))
    c.mtl = ml_collections.ConfigDict(dict(
        tasks="va+expr+au",  # task kinds joined by "+": va, expr, au, attr
        num_expressions=8,  # expr head width
        attributes=(),  # attr: the attribute names (one balancer task each)
        loss_scale=dict()))  # task -> constant factor on its raw loss (e.g. au: 100)
    c.balancer = ml_collections.ConfigDict(dict(
        name="ew",  # ew | fixed | uw | dwa | gradnorm | ema | rema | dwema
        ema=dict(beta=0.1, eps=1e-8), rema=dict(beta=0.1, eps=1e-8),
        dwema=dict(beta=0.1, temperature=2.0, eps=1e-8),
        dwa=dict(temperature=2.0), gradnorm=dict(alpha=1.5), uw=dict(init_log_var=-0.5)))
    c.phases.full.epochs = epochs
    c.optimizer.sam_rho = 0.0
    return c


def balance_synthfaces_config(*, quick: bool, **builder_kwargs) -> ml_collections.ConfigDict:
    """`balance_config` on "studio" SynthFaces: ``quick`` = `efficientnet_tiny` (width 2)
    at 64 px for 8 epochs, else ResNet-18 at 112 px for 20; Adam 3e-3, cosine, batch 32."""
    c = balance_config(epochs=8 if quick else 20)
    if quick:
        c.model.update(backbone="efficientnet_tiny",
                       backbone_kwargs=dict(width_multiplier=2.0, drop_rate=0.1))
        size, sizes = 64, dict(train=3200, validation=640)
    else:
        c.model.update(backbone="resnet18", backbone_kwargs=dict())
        size, sizes = 112, dict(train=12000, validation=2000)
    c.data.image_size = size
    c.data.builder_kwargs = dict(domain="studio", image_size=size, sizes=sizes,
                                 **builder_kwargs)
    c.data.augment.enabled = False
    c.batch_size = 32
    c.phases.full.learning_rate = 3e-3
    c.optimizer.schedule = "cosine"
    c.log_every_steps = 20
    return c
