"""Everything a run needs before its first step, built from the config.

`setup_run` resolves the names in the config (method, model, balancer, data set,
optimizer), opens the data, initialises the model (or starts from a converted checkpoint,
``config.init_from``), lays out the phases and places the state on the device mesh. It is
the only place where a bad config can fail, and `user_errors` turns those failures into
one-line `ConfigError`s (set ``AFFECTJAX_DEBUG=1`` to keep the traceback).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import os
import sys
from typing import Any, Callable, Iterator

import jax
import numpy as np

from affectjax import registry
from affectjax.train import optim
from affectjax.train import sharding
from affectjax.train import steps as steps_lib
from affectjax.train.errors import ConfigError, DataError, UserError, one_line
from affectjax.train.method import Method
from affectjax.train.state import TrainState, create_train_state


@contextlib.contextmanager
def user_errors() -> Iterator[None]:
    """Re-raises registry and validation errors as one-line `UserError`s."""
    try:
        yield
    except UserError:
        raise
    except (FileNotFoundError, NotADirectoryError) as exc:
        if os.environ.get("AFFECTJAX_DEBUG"):
            raise
        raise DataError(one_line(exc)) from exc
    except (KeyError, ValueError, TypeError, AttributeError) as exc:
        if os.environ.get("AFFECTJAX_DEBUG"):
            raise
        raise ConfigError(one_line(exc)) from exc


@dataclasses.dataclass(frozen=True)
class Phase:
    """One phase of training: global steps ``[start, end)``."""

    index: int
    name: str
    start: int
    end: int
    learning_rate: float
    trainable: tuple[str, ...]
    lr_multipliers: dict[str, float]


@dataclasses.dataclass
class RunSetup:
    """The resolved run (see `setup_run`)."""

    method: Method
    model: Any
    balancer: Any
    loss_fn: Callable[..., Any]
    phases: list[Phase]
    state: TrainState
    group_labels: Any
    rng: jax.Array
    mesh: Any
    shard: Callable[[Any], Any]
    train_loader: Any
    eval_loader: Any
    batch_size: int
    steps_per_epoch: int
    eval_step: Callable[..., Any]
    optimizer_config: Any
    class_names: tuple[str, ...] | None

    def phase_optimizer(self, phase: Phase, balancer_params: Any):
        """``(tx, schedule)`` of `phase` (the method's optimizer builder, or the default)."""
        labels = optim.trainable_labels(self.group_labels, balancer_params, phase.trainable)
        build = self.method.build_optimizer or optim.build_optimizer
        return build(
            self.optimizer_config, learning_rate=phase.learning_rate, labels=labels,
            steps_per_epoch=self.steps_per_epoch, total_steps=phase.end - phase.start,
            lr_multipliers=phase.lr_multipliers)

    def shared_mask(self) -> Any:
        """Bools over the parameters: the method's ``shared_group`` (None: all True)."""
        group = self.method.shared_group
        return jax.tree.map(lambda g: group is None or g == group, self.group_labels)

    def make_train_step(self, phase: Phase) -> Callable[..., Any]:
        """The jitted train step of `phase` (traced once)."""
        _, schedule = self.phase_optimizer(phase, self.state.balancer_params)
        step = steps_lib.make_train_step(
            self.loss_fn, self.balancer, task_names=self.method.task_names,
            steps_per_epoch=self.steps_per_epoch, schedule=schedule,
            phase_start=phase.start, inputs_fn=self.method.inputs_fn,
            apply=self.method.apply_fn(self.model), shared_mask=self.shared_mask())
        return steps_lib.jit_train_step(step, state_sharding=sharding.replicated(self.mesh),
                                        data_sharding=sharding.data_sharding(self.mesh))


def build_phase_optimizer(run: RunSetup, state: TrainState, phase: Phase) -> TrainState:
    """`state` with `phase`'s optimizer and a fresh optimizer state, replicated."""
    tx, _ = run.phase_optimizer(phase, state.balancer_params)
    return sharding.replicate(state.with_optimizer(tx), sharding.replicated(run.mesh))


def _positive_int(config: Any, key: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise ConfigError(f"config.{key} must be a positive integer, got {value!r}")
    return int(value)


def build_phases(config: Any, groups: tuple[str, ...], steps_per_epoch: int) -> list[Phase]:
    """Lays out ``config.phase_order`` over global steps."""
    order = config.phase_order
    if isinstance(order, str):
        order = tuple(s.strip() for s in order.split(",") if s.strip())
    phases, start = [], 0
    for name in order:
        if name not in config.phases:
            raise ConfigError(f"config.phase_order names {name!r}, which is not in "
                              f"config.phases ({sorted(config.phases.keys())})")
        cfg = config.phases[name]
        epochs = cfg.epochs
        if isinstance(epochs, bool) or not isinstance(epochs, (int, float)) or epochs < 0:
            raise ConfigError(f"config.phases.{name}.epochs must be >= 0, got {epochs!r}")
        num = int(round(epochs * steps_per_epoch))
        if num == 0:
            continue
        lr = cfg.learning_rate
        if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not lr > 0:
            raise ConfigError(f"config.phases.{name}.learning_rate must be > 0, got {lr!r}")
        mults = dict(cfg.get("lr_multipliers", {}) or {})
        phases.append(Phase(len(phases), name, start, start + num, float(lr),
                            optim.parse_trainable(cfg.get("trainable", "all"), groups), mults))
        start += num
    if not phases:
        raise ConfigError("no training steps: every phase in config.phase_order has 0 epochs")
    return phases


def load_pretrained(path: str) -> tuple[dict[str, Any], str]:
    """The variables of ``config.init_from``: a converted checkpoint or a training workdir.

    Returns:
      ``(variables, origin)``; a converted directory (``meta.json``, written by
      `affectjax.convert`) or a run's ``best/``/``checkpoints/`` (`affectjax.train`).

    Raises:
      DataError: one line naming ``config.init_from`` when `path` is neither.
    """
    from affectjax import convert  # pylint: disable=import-outside-toplevel
    from affectjax.train import checkpoint  # pylint: disable=import-outside-toplevel
    path = os.path.abspath(os.path.expanduser(path))
    if os.path.exists(os.path.join(path, "meta.json")):
        return convert.load_converted(path)[0], f"converted:{path}"
    if any(os.path.isdir(os.path.join(path, sub)) for sub in ("best", "checkpoints")):
        return checkpoint.restore_run_variables(path)
    raise DataError(f"config.init_from: {path} is neither a converted checkpoint (no "
                    "meta.json) nor a training workdir (no best/ or checkpoints/)")


def merge_by_path(variables: Any, loaded: Any) -> tuple[Any, list[str], list[str]]:
    """Copies the arrays of `loaded` into `variables` where paths and shapes match.

    Returns:
      ``(merged, loaded_paths, kept_paths)``: the merged tree, the paths taken from
      `loaded` and those kept from `variables`.
    """
    flat_loaded = dict(jax.tree_util.tree_leaves_with_path(loaded))
    used, kept = [], []

    def pick(key_path, value):
        other = flat_loaded.get(key_path)
        if other is not None and np.shape(other) == np.shape(value):
            used.append(jax.tree_util.keystr(key_path))
            return np.asarray(other, dtype=np.asarray(value).dtype)
        kept.append(jax.tree_util.keystr(key_path))
        return value

    return jax.tree_util.tree_map_with_path(pick, variables), used, kept


def _merge_pretrained(config: Any, method: Method, variables: dict[str, Any],
                      path: str) -> dict[str, Any]:
    """`variables` with the arrays of ``config.init_from`` (the method's merge rule)."""
    loaded, origin = load_pretrained(path)
    merge = method.merge_pretrained or (lambda _, v, l: merge_by_path(v, l))
    merged, used, kept = merge(config, variables, loaded)
    if not used:
        raise DataError(f"config.init_from: no array of {path} matches the model's parameters")
    print(f"init_from {origin}: {len(used)} arrays loaded, {len(kept)} kept from the random "
          "init" + (f" ({', '.join(kept[:4])}{', ...' if len(kept) > 4 else ''})"
                    if kept else ""), file=sys.stderr)
    return merged


def _pipeline_data(config: Any, *, seed: int) -> tuple[Any, Any, Any]:
    """The default data of a run: one `affectjax.data.pipeline` source per split."""
    from affectjax.data import pipeline  # pylint: disable=import-outside-toplevel
    batch_size = int(config.batch_size)
    eval_batch_size = config.get("eval_batch_size", 0) or batch_size
    announce = jax.process_index() == 0  # one description per run, not one per process
    train_source = pipeline.create_source(config.data, config.data.train_split,
                                          announce=announce)
    eval_source = pipeline.create_source(config.data, config.data.eval_split,
                                         announce=announce)
    train_loader = pipeline.Loader(train_source, batch_size=batch_size, shuffle=True,
                                   seed=seed, train=True, data_config=config.data,
                                   oversample=config.data.get("oversample", ""))
    eval_loader = pipeline.Loader(eval_source, batch_size=eval_batch_size, shuffle=False,
                                  seed=seed, train=False, data_config=config.data)
    return train_loader, eval_loader, train_source


def create_balancer(bcfg: dict[str, Any]):
    """The balancer of a ``config.balancer`` section: ``name`` and its keyword arguments.

    A sub-section named after a balancer holds arguments for that balancer only
    (``balancer.ema.beta=0.2``), so one config serves a sweep over ``balancer.name``;
    arguments outside any sub-section go to whichever balancer is named.
    """
    from affectjax import balancing  # pylint: disable=import-outside-toplevel
    bcfg = dict(bcfg)
    name = bcfg.pop("name", "ew")
    own = {k: bcfg.pop(k) for k in list(bcfg) if k in balancing.BALANCERS}
    kwargs = {**bcfg, **dict(own.get(name) or {})}
    try:
        return balancing.create(name, **kwargs)
    except TypeError as exc:
        raise ConfigError(f"config.balancer: {name} takes no such argument ({exc}); "
                          f"given {sorted(kwargs)}") from None


def init_keys(config: Any) -> tuple[jax.Array, jax.Array]:
    """``(model init key, training key)`` from ``config.seed``; ``config.init_seed`` >= 0
    fixes the initial weights apart from the seed (every balancer of a study starts from
    the same weights while the data order and dropout follow the seed)."""
    init_rng, rng = jax.random.split(jax.random.PRNGKey(config.seed))
    init_seed = config.get("init_seed", -1)
    if init_seed is not None and int(init_seed) >= 0:
        init_rng = jax.random.fold_in(jax.random.PRNGKey(int(init_seed)), 0x1417)
    return init_rng, rng


def initialize_distributed(config: Any) -> None:
    """Joins the processes of a multi-host run (``config.distributed``), once per process.

    Must run before anything asks JAX for its devices or process index (the run's first
    writes ask which process writes), so the training entries call it first. Auto-detects
    Cloud TPU, SLURM, Open MPI and Kubernetes clusters; elsewhere ``config`` gives the
    coordinator "host:port", the number of processes and this process's id.
    """
    if not config.get("distributed", False) or jax.distributed.is_initialized():
        return
    kwargs = {k: config.get(k) for k in ("coordinator_address", "num_processes", "process_id")
              if config.get(k) not in (None, "", -1)}
    jax.distributed.initialize(**kwargs)


def setup_run(config: Any, workdir: str, method: Method) -> RunSetup:
    """Resolves `config` into a ready-to-train `RunSetup` of `method` (module docstring)."""
    del workdir
    initialize_distributed(config)
    from affectjax import balancing  # pylint: disable=import-outside-toplevel
    from affectjax.data import pipeline  # pylint: disable=import-outside-toplevel

    # Names first (cheap), so a typo fails before any data is prepared.
    model = method.build_model(config)
    bcfg = (config.balancer.to_dict() if hasattr(config.balancer, "to_dict")
            else dict(config.balancer))
    if method.make_balancer is not None:
        if bcfg.get("name", "ew") != "ew":
            raise ConfigError(f"config.balancer.name: the {method.name} method weighs its "
                              f"loss terms ({', '.join(method.task_names)}) itself; leave "
                              f"it at 'ew', got {bcfg['name']!r}")
        balancer = method.make_balancer(config)
    else:
        balancer = create_balancer(bcfg)
    if method.make_data is None:
        pipeline.get_builder_class(config.data.name)
    if config.optimizer.name not in optim.OPTIMIZERS:
        raise registry.unknown_name_error("optimizer.name", config.optimizer.name,
                                          optim.OPTIMIZERS)
    if config.optimizer.get("schedule", "constant") not in optim.SCHEDULES:
        raise registry.unknown_name_error("optimizer.schedule", config.optimizer.schedule,
                                          optim.SCHEDULES)
    batch_size = _positive_int(config, "batch_size", config.batch_size)
    eval_batch_size = config.get("eval_batch_size", 0) or batch_size
    num_devices = int(config.get("num_devices", 0) or 0)
    if num_devices > jax.device_count():
        raise ConfigError(f"config.num_devices={num_devices} but only {jax.device_count()} "
                          "devices are available")
    mesh = sharding.make_mesh(jax.devices()[:num_devices] if num_devices else None)
    sharding.check_batch_size(batch_size, mesh)
    sharding.check_batch_size(eval_batch_size, mesh)

    if method.make_data is not None and (config.get("data") or {}).get("oversample", ""):
        raise ConfigError(f"config.data.oversample: the {method.name} method builds its own "
                          "data and does not oversample; leave it empty")
    make_data = method.make_data or _pipeline_data
    train_loader, eval_loader, train_source = make_data(config, seed=config.seed)
    steps_per_epoch = config.get("steps_per_epoch", 0) or train_loader.steps_per_epoch
    if steps_per_epoch <= 0:
        raise DataError(f"the training split has fewer than batch_size={batch_size} examples")
    phases = build_phases(config, method.groups, steps_per_epoch)
    loss_fn = method.make_loss(config, train_source)

    init_rng, rng = init_keys(config)
    sample = next(iter(eval_loader.eval_batches()))
    sample = {k: np.asarray(v)[:1] for k, v in sample.items()
              if np.asarray(v).dtype.kind in "biuf"}
    init = jax.jit(functools.partial(model.init, train=False))
    variables = jax.device_get(init(init_rng, *method.inputs_fn(sample)))
    if config.get("init_from", ""):
        variables = _merge_pretrained(config, method, dict(variables), config.init_from)

    group_labels = method.param_groups(variables["params"])
    num_tasks = len(method.task_names)
    balancer_params = balancer.init_params(num_tasks)
    run = RunSetup(
        method=method, model=model, balancer=balancer, loss_fn=loss_fn, phases=phases,
        state=None, group_labels=group_labels, rng=None, mesh=mesh,
        shard=functools.partial(sharding.shard_batch, sharding=sharding.data_sharding(mesh),
                                keys=method.batch_keys),
        train_loader=train_loader, eval_loader=eval_loader, batch_size=batch_size,
        steps_per_epoch=int(steps_per_epoch), eval_step=None,
        optimizer_config=config.optimizer,
        class_names=tuple(method.class_names(config)) if method.class_names else None)
    tx, _ = run.phase_optimizer(phases[0], balancer_params)
    state = create_train_state(variables=variables, apply_fn=model.apply, tx=tx,
                               balancer_state=balancer.init(num_tasks),
                               balancer_params=balancer_params)
    replicated = sharding.replicated(mesh)
    run.state = sharding.replicate(state, replicated)
    run.rng = sharding.replicate(rng, replicated)
    run.eval_step = steps_lib.jit_eval_step(
        steps_lib.make_eval_step(method.eval_stats, inputs_fn=method.inputs_fn,
                                 apply=method.apply_fn(model)),
        state_sharding=replicated, data_sharding=sharding.data_sharding(mesh))
    return run
