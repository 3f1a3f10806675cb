"""On JAX, many training steps in one compiled call.

Keras' JAX trainer honours ``steps_per_execution`` only by calling its compiled one-step
function that many times from Python: every step still costs a dispatch, which for these
small models is most of a step's time (on a GPU, the device idles between steps). Here a
group of equally shaped batches runs as one ``jax.lax.scan`` over Keras' own ``train_step``,
compiled once; a group cut short by the end of an epoch runs step by step, as Keras would.

The state threads through the scan exactly as through Keras' loop (weights, optimizer, the
metrics, the seed of the random layers), so ``fit``'s callbacks, logs and checkpoints are
unchanged. Not used under a ``keras.distribution`` (its shardings are Keras' business), nor
on a CPU: XLA's CPU backend runs convolutions inside a loop 4x slower than outside one (the
fast CNN on 2 cores: 45.6 s against 12.4 s), which costs more than the dispatches save.
``MNISTKIT_FUSED_STEPS=1`` (or ``0``) forces the choice, for tests and benchmarks.
"""

from __future__ import annotations

import os


def fuse_steps(model) -> None:
    """Make ``model.fit`` run each full group of ``steps_per_execution`` batches in one call,
    on the JAX backend; elsewhere, or with one step per call, leave ``model`` as it is."""
    import keras

    if (keras.backend.backend() != "jax" or model.steps_per_execution <= 1
            or keras.distribution.distribution() is not None):
        return
    import jax

    forced = os.environ.get("MNISTKIT_FUSED_STEPS")
    if not (forced == "1" if forced in ("0", "1") else jax.default_backend() != "cpu"):
        return

    def make_train_function(force: bool = False) -> None:
        if model.train_function is None or force:
            model.train_function = _grouped(model, model.steps_per_execution)

    model.make_train_function = make_train_function


def _grouped(model, group_size: int):
    import jax
    import jax.numpy as jnp

    def scan_steps(state, stacked):
        def step(state, batch):
            logs, state = model.train_step(state, batch)
            return state, logs

        state, logs = jax.lax.scan(step, state, stacked)
        return jax.tree.map(lambda series: series[-1], logs), state

    run_group = jax.jit(scan_steps, donate_argnums=0)
    single_step = jax.jit(model.train_step, donate_argnums=0)

    def train_function(state, iterator):
        batches = []
        for batch in iterator:
            batches.append(batch)
            if len(batches) == group_size:
                break
        if not batches:
            raise StopIteration  # as Keras' own step does: fit ends the epoch
        shapes = {tuple(jnp.shape(leaf) for leaf in jax.tree.leaves(b)) for b in batches}
        if len(batches) == group_size and len(shapes) == 1:
            stacked = jax.tree.map(lambda *leaves: jnp.stack(leaves), *batches)
            return run_group(state, stacked)
        logs = None
        for batch in batches:
            logs, state = single_step(state, batch)
        return logs, state

    return train_function
