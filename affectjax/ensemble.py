"""Ensembles of any flax linen model as one stacked pytree, driven by `jax.vmap`.

M members of one model are held as ONE variable pytree whose every leaf has a leading
axis of size M (member ``i`` is ``leaf[i]``). Initialisation, the forward pass, BatchNorm
statistics, dropout keys and the optimizer are all vmapped over that axis, so M members
cost one compiled program, the loss can see the stacked outputs ``[M, ...]`` of all
members at once, and `jax.grad` of a loss summed over members gives each member exactly
its own gradient. This is what co-training methods need, e.g. consensual collaborative
training (CCT, Gera & Balasubramanian), where M networks see the same batch and a
consensus term couples their predictions.

* `init` initialises M members, each from its own key; `broadcast` copies one (e.g.
  pretrained) variable set M times; `reinit` then gives each member its own freshly
  initialised leaves where a path predicate says so (e.g. a new head per member).
* `apply` turns ``model.apply`` into a function of the stacked variables whose outputs
  have a leading axis M. Inputs are shared by the members by default (``in_axes=None``)
  or per member (``in_axes=0``). Each rng key passed in ``rngs`` is split into M keys
  with `split_rngs`, member ``i`` using ``member(split_rngs(rngs, M), i)``.
  With ``mutable=["batch_stats"]`` every member updates its own statistics.
* `member` / `stack` go from the stacked tree to a list of ordinary variable sets and
  back; `num_members` reads M.
* `per_member` wraps an optax transformation so that its state and every non-element-wise
  computation (`optax.clip_by_global_norm`, SAM's normalisation, ...) are per member.

Example (M = 3 members sharing a batch; the loss is a sum over members)::

  >>> import flax.linen as nn, jax, jax.numpy as jnp, optax
  >>> from affectjax import ensemble
  >>> model = nn.Dense(2)
  >>> x = jnp.ones((4, 5))
  >>> variables = ensemble.init(model, jax.random.key(0), 3, x)
  >>> variables["params"]["kernel"].shape
  (3, 5, 2)
  >>> forward = ensemble.apply(model)
  >>> forward(variables, x).shape
  (3, 4, 2)
  >>> tx = ensemble.per_member(optax.chain(optax.clip_by_global_norm(1.0), optax.sgd(0.1)))
  >>> opt_state = tx.init(variables["params"])
  >>> def loss(params):
  ...   return jnp.sum(forward({"params": params}, x) ** 2)
  >>> grads = jax.grad(loss)(variables["params"])
  >>> updates, opt_state = tx.update(grads, opt_state, variables["params"])
  >>> params = optax.apply_updates(variables["params"], updates)
  >>> ensemble.num_members(params)
  3

References:
  Gera, D. & Balasubramanian, S., "Consensual Collaborative Training and Knowledge
  Distillation Based Facial Expression Recognition Under Noisy Annotations" (CCT).
"""

from __future__ import annotations

import numbers
from typing import Any, Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

__all__ = [
    "STRATEGIES", "init", "broadcast", "reinit", "apply", "member", "stack", "num_members",
    "split_rngs", "per_member",
]

PyTree = Any


def _check_num_members(value: Any) -> int:
    if (isinstance(value, bool) or not isinstance(value, numbers.Integral)
            or int(value) < 1):
        raise ValueError(f"num_members must be a positive int, got {value!r}")
    return int(value)


def num_members(stacked: PyTree) -> int:
    """The number of members M of a stacked pytree: the shared leading axis of its leaves.

    Args:
      stacked: a pytree whose every leaf has the same leading axis M.

    Returns:
      M, a Python int.

    Raises:
      ValueError: the tree has no leaf, a scalar leaf, or leaves with different leading axes.
    """
    sizes = {jnp.shape(leaf)[0] if jnp.ndim(leaf) else None
             for leaf in jax.tree.leaves(stacked)}
    if len(sizes) != 1 or None in sizes:
        raise ValueError(
            "a stacked ensemble needs leaves that all share one leading (member) axis; "
            f"got leading sizes {sorted(sizes, key=str) or 'none (no leaves)'}")
    return sizes.pop()


def split_rngs(rngs: Any, num_members: int) -> Any:
    """Splits each key of `rngs` into `num_members` keys (leading axis M).

    This is how `init` and `apply` derive per-member keys: member ``i`` uses
    ``member(split_rngs(rngs, M), i)``, i.e. ``jax.random.split(key, M)[i]`` for each key.

    Args:
      rngs: a PRNG key, or a dict ``{name: key}`` as flax's ``rngs`` argument takes.
      num_members: M, a positive int.

    Returns:
      The same structure with each key replaced by a stack of M keys.
    """
    num_members = _check_num_members(num_members)
    if isinstance(rngs, dict) or hasattr(rngs, "items"):
        return {name: jax.random.split(key, num_members) for name, key in rngs.items()}
    return jax.random.split(rngs, num_members)


def init(model: nn.Module, rng: Any, num_members: int, *inputs: Any,
         method: Callable[..., Any] | str | None = None, **kwargs: Any) -> PyTree:
    """Initialises M members of `model`, each from its own key.

    Equivalent to ``jax.vmap(lambda r: model.init(r, *inputs, **kwargs))(keys)`` with
    ``keys = split_rngs(rng, num_members)``: member ``i`` equals
    ``model.init(member(keys, i), *inputs, **kwargs)``.

    Args:
      model: any flax linen module.
      rng: a PRNG key, or a dict ``{name: key}`` (e.g. ``{"params": k1, "dropout": k2}``).
      num_members: M, a positive int.
      *inputs: the example inputs of ``model.init``, shared by all members.
      method: passed to ``model.init``.
      **kwargs: keyword arguments of ``model.init`` (e.g. ``train=False``), shared.

    Returns:
      The variables (``params``, ``batch_stats``, ...) with a leading axis M on every leaf.

    Raises:
      ValueError: `num_members` is not a positive int.
    """
    keys = split_rngs(rng, _check_num_members(num_members))
    return jax.vmap(lambda r: model.init(r, *inputs, method=method, **kwargs))(keys)


def broadcast(variables: PyTree, num_members: int) -> PyTree:
    """M identical copies of one variable set (e.g. pretrained weights), stacked.

    Args:
      variables: an ordinary (unstacked) pytree of arrays.
      num_members: M, a positive int.

    Returns:
      The pytree with every leaf repeated along a new leading axis of size M.

    Raises:
      ValueError: `num_members` is not a positive int.
    """
    num_members = _check_num_members(num_members)
    return jax.tree.map(
        lambda x: jnp.repeat(jnp.asarray(x)[None], num_members, axis=0), variables)


def _path_str(path: Sequence[Any]) -> str:
    parts = []
    for key in path:
        for attr in ("key", "name", "idx"):
            if hasattr(key, attr):
                parts.append(str(getattr(key, attr)))
                break
        else:
            parts.append(str(key))
    return "/".join(parts)


def reinit(stacked: PyTree, fresh: PyTree, path_predicate: Callable[[str], bool]) -> PyTree:
    """Replaces the leaves of `stacked` selected by `path_predicate` with those of `fresh`.

    The typical use gives every member of a broadcast pretrained model its own new head:

    >>> import flax.linen as nn, jax, jax.numpy as jnp
    >>> from affectjax import ensemble
    >>> class Net(nn.Module):
    ...   @nn.compact
    ...   def __call__(self, x):
    ...     return nn.Dense(2, name="head")(nn.Dense(4, name="body")(x))
    >>> x = jnp.ones((1, 3))
    >>> pretrained = Net().init(jax.random.key(0), x)
    >>> v = ensemble.reinit(ensemble.broadcast(pretrained, 3),
    ...                     ensemble.init(Net(), jax.random.key(1), 3, x),
    ...                     lambda path: path.startswith("params/head/"))
    >>> bool(jnp.all(v["params"]["body"]["kernel"] == pretrained["params"]["body"]["kernel"]))
    True

    The fresh leaves come from an independently initialised stacked set (typically
    `init` with another key) rather than from a model and inputs here, so that this
    function stays pure, works on any pytree, and lets the caller choose how the new
    leaves are made (another initialiser, another model's head, ...).

    Args:
      stacked: the stacked variables to update (leading axis M).
      fresh: stacked variables with the same tree structure and leaf shapes.
      path_predicate: called with each leaf's path as a "/"-joined string of its keys,
        collection first (e.g. ``"params/head/kernel"``, ``"batch_stats/bn/mean"``);
        the leaves for which it returns True are taken from `fresh`.

    Returns:
      A stacked pytree equal to `stacked` except at the selected leaves.

    Raises:
      ValueError: the two trees differ in structure or shapes, or the predicate selects
        no leaf (most likely a misspelt path).
    """
    if jax.tree.structure(stacked) != jax.tree.structure(fresh):
        raise ValueError("reinit: `stacked` and `fresh` have different tree structures: "
                         f"{jax.tree.structure(stacked)} vs {jax.tree.structure(fresh)}")
    selected = []

    def pick(path, old, new):
        name = _path_str(path)
        if not path_predicate(name):
            return old
        if jnp.shape(old) != jnp.shape(new):
            raise ValueError(f"reinit: leaf {name!r} has shape {jnp.shape(old)} in "
                             f"`stacked` but {jnp.shape(new)} in `fresh`")
        selected.append(name)
        return new

    out = jax.tree_util.tree_map_with_path(pick, stacked, fresh)
    if not selected:
        names = [_path_str(p) for p, _ in jax.tree_util.tree_leaves_with_path(stacked)]
        raise ValueError(f"reinit: path_predicate selects no leaf; the paths are {names}")
    return out


def member(stacked: PyTree, i: int) -> PyTree:
    """Member `i` of a stacked pytree: every leaf indexed at ``[i]``.

    Args:
      stacked: a pytree whose leaves have a leading axis M.
      i: the member index (an int, or a traced integer).

    Returns:
      An ordinary pytree, e.g. variables for ``model.apply``. ``stack`` is its inverse.
    """
    return jax.tree.map(lambda x: x[i], stacked)


def stack(members: Sequence[PyTree]) -> PyTree:
    """Stacks M pytrees of the same structure into one with a leading axis M.

    Args:
      members: a non-empty sequence of pytrees with equal structure and leaf shapes.

    Returns:
      The stacked pytree; ``member(stack(members), i)`` equals ``members[i]``.

    Raises:
      ValueError: `members` is empty.
    """
    members = list(members)
    if not members:
        raise ValueError("stack needs at least one member")
    return jax.tree.map(lambda *xs: jnp.stack(xs), *members)


STRATEGIES = ("vmap", "unroll")


def apply(model: nn.Module, *, method: Callable[..., Any] | str | None = None,
          mutable: Any = False, in_axes: Any = None, strategy: str = "vmap",
          ) -> Callable[..., Any]:
    """Makes ``model.apply`` a function of stacked variables, vmapped over the members.

    The returned ``fn(stacked_variables, *inputs, rngs=None, **kwargs)`` runs member
    ``i`` as ``model.apply(member(stacked_variables, i), *inputs_i,
    rngs=member(split_rngs(rngs, M), i), method=method, mutable=mutable, **kwargs)``:
    each rng key (e.g. ``{"dropout": key}``) is split into one key per member, and with
    ``mutable=["batch_stats"]`` each member updates its own statistics. Keyword
    arguments (e.g. ``train=True``) are shared and static.

    Args:
      model: any flax linen module.
      method: passed to ``model.apply``.
      mutable: passed to ``model.apply``; when not False, ``fn`` returns
        ``(outputs, updated_collections)``, both stacked.
      in_axes: how the positional inputs map to members: None (default) shares every
        input among the members; 0 gives every input a leading axis M (one input per
        member, e.g. per-member augmented views); a tuple gives one entry (None, 0, or a
        `jax.vmap` prefix pytree) per positional input.
      strategy: how one program runs the members, with the same results: ``"vmap"``
        (`jax.vmap`: every layer once for all members; a convolution becomes a grouped
        convolution, fast on GPUs and TPUs) or ``"unroll"`` (a Python loop inside the
        traced program: M copies of every layer; XLA's CPU backend runs M plain
        convolutions much faster than one grouped one). ``in_axes`` entries must then be
        None or 0.

    Returns:
      ``fn(stacked_variables, *inputs, rngs=None, **kwargs)`` whose outputs have a
      leading axis M (and the updated stacked collections too when `mutable`).
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}; choose one of {list(STRATEGIES)}")

    def fn(stacked_variables: PyTree, *inputs: Any, rngs: Any = None, **kwargs: Any):
        count = num_members(stacked_variables)
        axes = in_axes if isinstance(in_axes, (tuple, list)) else (in_axes,) * len(inputs)
        if len(axes) != len(inputs):
            raise ValueError(f"in_axes has {len(axes)} entries for {len(inputs)} inputs")
        mapped = [i for i, axis in enumerate(axes) if axis is not None]
        member_rngs = None if rngs is None else split_rngs(rngs, count)

        def one(variables, keys, *mapped_inputs):
            xs = list(inputs)
            for i, x in zip(mapped, mapped_inputs):
                xs[i] = x
            return model.apply(variables, *xs, rngs=keys, method=method, mutable=mutable,
                               **kwargs)

        mapped_inputs = [inputs[i] for i in mapped]
        if strategy == "vmap":
            return jax.vmap(one, in_axes=(0, 0) + tuple(axes[i] for i in mapped))(
                stacked_variables, member_rngs, *mapped_inputs)
        if any(axes[i] != 0 for i in mapped):
            raise ValueError("strategy='unroll' takes in_axes entries None or 0, got "
                             f"{in_axes!r}")
        outputs = [one(member(stacked_variables, j),
                       None if member_rngs is None else member(member_rngs, j),
                       *(member(x, j) for x in mapped_inputs)) for j in range(count)]
        return stack(outputs)

    return fn


def per_member(tx: optax.GradientTransformation) -> optax.GradientTransformationExtraArgs:
    """Runs an optax transformation separately for every member of a stacked tree.

    ``init`` and ``update`` are vmapped over the leading axis, so each member has its own
    optimizer state and every non-element-wise computation sees one member only:
    `optax.clip_by_global_norm` clips each member by its own norm, SAM normalises each
    member's gradient by its own norm, and members never share statistics. Without the
    wrapper such transformations mix the members (one member's large gradient would
    shrink the others' steps). Element-wise transformations (`optax.sgd`, `optax.adam`,
    weight decay, ...) give the same result with or without it, so they need no wrapper.

    Extra arguments of ``update`` (`optax.GradientTransformationExtraArgs`, e.g. a
    ``value`` for a line search) are passed unchanged to every member; a plain
    `optax.GradientTransformation` simply ignores them.

    Args:
      tx: any optax gradient transformation.

    Returns:
      An `optax.GradientTransformationExtraArgs` on stacked params, updates and state.
    """
    tx = optax.with_extra_args_support(tx)

    def init_fn(params):
        return jax.vmap(tx.init)(params)

    def update_fn(updates, state, params=None, **extra_args):
        return jax.vmap(lambda u, s, p: tx.update(u, s, p, **extra_args))(
            updates, state, params)

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)
