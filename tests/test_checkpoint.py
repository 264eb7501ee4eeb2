"""Saving and restoring with the ecosystem's tools: flax.serialization bytes and orbax-checkpoint."""

import flax.serialization
import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
import pytest
from flax import nnx

import jlstm
import jlstm.linen
import jlstm.nnx
from conftest import assert_bit_identical, bits


def _assert_bit_identical(actual, expected):
    """Same tree structure (NamedTuples included), dtypes, shapes and bits."""
    assert jax.tree.structure(actual) == jax.tree.structure(expected)
    assert_bit_identical(actual, expected)


def _params(seed, input_dim=3, units=4, dtype=jnp.float32):
    key = jax.random.key(seed)
    params = jlstm.init_params(key, input_dim, units)
    bias = jax.random.normal(jax.random.fold_in(key, 1), params.bias.shape).at[0].set(-0.0)
    params = params._replace(bias=bias)
    return jax.tree.map(lambda a: a.astype(dtype), params)


TREES = {
    "params": lambda: _params(0),
    "bfloat16": lambda: _params(1, dtype=jnp.bfloat16),
    "stacked_bidirectional": lambda: [_params(2), _params(3), _params(4, 8), _params(5, 8)],
    "pair": lambda: (_params(6), _params(7)),
}


@pytest.mark.parametrize("tree", TREES)
def test_flax_serialization_bytes_round_trip(tree):
    original = TREES[tree]()
    data = flax.serialization.to_bytes(original)
    assert isinstance(data, bytes)
    restored = flax.serialization.from_bytes(jax.tree.map(jnp.zeros_like, original), data)
    _assert_bit_identical(restored, original)


@pytest.mark.parametrize("tree", TREES)
def test_orbax_round_trip(tree, tmp_path):
    original = TREES[tree]()
    with ocp.StandardCheckpointer() as checkpointer:
        checkpointer.save(tmp_path / "ckpt", original)
        checkpointer.wait_until_finished()
        # The usual restore: from the shapes and dtypes only, nothing materialised.
        abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, original)
        restored = checkpointer.restore(tmp_path / "ckpt", abstract)
    _assert_bit_identical(restored, original)


def test_restored_params_give_bit_identical_outputs(tmp_path):
    params = _params(8)
    x = jax.random.normal(jax.random.key(9), (2, 5, 3))
    with ocp.StandardCheckpointer() as checkpointer:
        checkpointer.save(tmp_path / "ckpt", params)
        checkpointer.wait_until_finished()
        abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, params)
        restored = checkpointer.restore(tmp_path / "ckpt", abstract)
    assert isinstance(restored, jlstm.LSTMParams)
    from_bytes = flax.serialization.from_bytes(params, flax.serialization.to_bytes(params))
    expected = jlstm.lstm(params, x, return_sequences=True)
    for p in (restored, from_bytes):
        np.testing.assert_array_equal(bits(jlstm.lstm(p, x, return_sequences=True)), bits(expected))


def _save_and_restore(tmp_path, tree, target):
    with ocp.StandardCheckpointer() as checkpointer:
        checkpointer.save(tmp_path / "ckpt", tree)
        checkpointer.wait_until_finished()
        return checkpointer.restore(tmp_path / "ckpt", target)


@pytest.mark.parametrize("module", ["LSTM", "Bidirectional"])
def test_linen_variables_round_trip(module, tmp_path):
    model = getattr(jlstm.linen, module)(4, return_sequences=True, dropout=0.2)
    x = jax.random.normal(jax.random.key(0), (2, 5, 3))
    variables = model.init(jax.random.key(1), x)
    fresh = model.init(jax.random.key(2), x)  # what a new process has before restoring
    restored = {
        "bytes": flax.serialization.from_bytes(fresh, flax.serialization.to_bytes(variables)),
        "orbax": _save_and_restore(tmp_path, variables, jax.tree.map(ocp.utils.to_shape_dtype_struct, fresh)),
    }
    dropout = {"dropout": jax.random.key(3)}
    for how, r in restored.items():
        _assert_bit_identical(r, variables)
        for kwargs in ({}, {"deterministic": False, "rngs": dropout}):
            np.testing.assert_array_equal(
                bits(model.apply(r, x, **kwargs)), bits(model.apply(variables, x, **kwargs)), err_msg=how
            )


def _nnx_model(seed):
    return jlstm.nnx.Bidirectional(3, 4, rngs=nnx.Rngs(seed), return_sequences=True, dropout=0.2)


def test_nnx_state_round_trips_through_orbax_with_its_dropout_stream(tmp_path):
    """The whole state, the dropout rng stream included: restored, the module draws the same masks."""
    model = _nnx_model(0)
    x = jax.random.normal(jax.random.key(0), (2, 5, 3))
    model(x, deterministic=False)  # advance the dropout stream, so that restoring it matters
    graphdef, abstract = nnx.split(nnx.eval_shape(lambda: _nnx_model(1)))
    restored = nnx.merge(graphdef, _save_and_restore(tmp_path, nnx.state(model), abstract))
    _assert_bit_identical(nnx.state(restored, nnx.Param), nnx.state(model, nnx.Param))
    np.testing.assert_array_equal(bits(restored(x)), bits(model(x)))
    np.testing.assert_array_equal(bits(restored(x, deterministic=False)), bits(model(x, deterministic=False)))


def test_nnx_params_round_trip_through_bytes():
    """flax.serialization takes plain dicts of arrays: the parameters (rng keys have no msgpack form)."""
    model = _nnx_model(0)
    x = jax.random.normal(jax.random.key(0), (2, 5, 3))
    data = flax.serialization.to_bytes(nnx.to_pure_dict(nnx.state(model, nnx.Param)))
    fresh = _nnx_model(1)
    params = nnx.state(fresh, nnx.Param)
    nnx.replace_by_pure_dict(params, flax.serialization.from_bytes(nnx.to_pure_dict(params), data))
    nnx.update(fresh, params)
    _assert_bit_identical(nnx.state(fresh, nnx.Param), nnx.state(model, nnx.Param))
    np.testing.assert_array_equal(bits(fresh(x)), bits(model(x)))
