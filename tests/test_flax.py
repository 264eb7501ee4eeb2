"""jlstm.linen and jlstm.nnx: the pure functions' numbers, interchangeable parameters, the loop options, dropout,
mixed precision, trainable with optax.

Saving and restoring them: test_checkpoint.py; their errors: test_bad_inputs.py.
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

import jlstm
import jlstm.linen
import jlstm.nnx
from conftest import assert_close

BATCH, TIME, INPUT_DIM, UNITS = 3, 5, 4, 3
FLAGS = {"return_sequences": True, "return_state": True}


def data(seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(BATCH, TIME, INPUT_DIM)).astype(np.float32)
    mask = rng.random((BATCH, TIME)) > 0.3
    state = tuple(rng.normal(size=(BATCH, UNITS)).astype(np.float32) for _ in range(4))
    target = rng.normal(size=(BATCH, TIME, UNITS)).astype(np.float32)
    return x, mask, state, target


def random_params(seed):
    params = jlstm.init_params(jax.random.key(seed), INPUT_DIM, UNITS)
    noise = jax.random.normal(jax.random.key(seed + 100), params.bias.shape)
    return params._replace(bias=params.bias + noise)


def assert_same(actual, expected):
    for a, e in zip(jax.tree.leaves(actual), jax.tree.leaves(expected), strict=True):
        np.testing.assert_array_equal(a, e)


def set_nnx_lstm(module, params):
    """Writes an LSTMParams (or an LSTMPParams, with its projection_kernel) into an nnx module's parameters."""
    for name, value in params._asdict().items():
        getattr(module, name)[...] = value


@pytest.mark.parametrize("go_backwards", [False, True], ids=["forward", "backwards"])
def test_lstm_wrappers_equal_pure_with_copied_params(go_backwards):
    x, mask, state, _ = data()
    params = random_params(0)
    expected = jlstm.lstm(params, x, initial_state=state[:2], mask=mask, go_backwards=go_backwards, **FLAGS)

    linen_model = jlstm.linen.LSTM(UNITS, go_backwards=go_backwards, **FLAGS)
    variables = linen_model.init(jax.random.key(1), x)
    assert jax.tree.map(jnp.shape, variables["params"]) == {
        "kernel": (INPUT_DIM, 4 * UNITS), "recurrent_kernel": (UNITS, 4 * UNITS), "bias": (4 * UNITS,)
    }
    assert_same(linen_model.apply({"params": params._asdict()}, x, state[:2], mask), expected)

    nnx_model = jlstm.nnx.LSTM(INPUT_DIM, UNITS, rngs=nnx.Rngs(1), go_backwards=go_backwards, **FLAGS)
    set_nnx_lstm(nnx_model, params)
    assert_same(nnx_model(x, state[:2], mask), expected)

    # linen -> nnx -> pure: the parameters mean the same thing everywhere.
    set_nnx_lstm(nnx_model, jlstm.LSTMParams(**variables["params"]))
    assert_same(nnx_model(x, state[:2], mask), linen_model.apply(variables, x, state[:2], mask))
    assert_same(nnx_model.params, jlstm.LSTMParams(**variables["params"]))


@pytest.mark.parametrize("merge_mode", ["concat", None])
def test_bidirectional_wrappers_equal_pure_with_copied_params(merge_mode):
    x, mask, state, _ = data()
    fwd, bwd = random_params(0), random_params(1)
    expected = jlstm.bidirectional(fwd, bwd, x, merge_mode=merge_mode, initial_state=state, mask=mask,
                                   **FLAGS)

    linen_model = jlstm.linen.Bidirectional(UNITS, merge_mode=merge_mode, **FLAGS)
    variables = linen_model.init(jax.random.key(1), x)
    assert sorted(variables["params"]) == ["backward", "forward"]
    copied = {"params": {"forward": fwd._asdict(), "backward": bwd._asdict()}}
    assert_same(linen_model.apply(copied, x, state, mask), expected)

    nnx_model = jlstm.nnx.Bidirectional(INPUT_DIM, UNITS, rngs=nnx.Rngs(1), merge_mode=merge_mode, **FLAGS)
    set_nnx_lstm(nnx_model.forward, fwd)
    set_nnx_lstm(nnx_model.backward, bwd)
    assert_same(nnx_model(x, state, mask), expected)


PROJ = 2  # proj_size, < UNITS


def random_projected_params(seed):
    params = jlstm.init_params(jax.random.key(seed), INPUT_DIM, UNITS, proj_size=PROJ)
    noise = jax.random.normal(jax.random.key(seed + 100), params.bias.shape)
    return params._replace(bias=params.bias + noise)


def assert_projected_init(params):
    """The shapes of a projected layer, PyTorch's bound for the projection, Keras's orthogonal recurrent rows."""
    assert isinstance(params, jlstm.LSTMPParams)
    assert [np.shape(p) for p in params] == [(INPUT_DIM, 4 * UNITS), (PROJ, 4 * UNITS), (4 * UNITS,), (UNITS, PROJ)]
    bound = 1 / np.sqrt(UNITS)
    assert 0 < np.abs(params.projection_kernel).max() <= bound
    assert_close(params.recurrent_kernel @ params.recurrent_kernel.T, np.eye(PROJ))


def test_projected_lstm_wrappers_equal_pure_with_copied_params():
    """proj_size=P: a parameter projection_kernel (units, P); the output and h are P wide; the pure numbers."""
    x, mask, state, _ = data()
    state = (state[0][:, :PROJ], state[1])  # h (batch, proj_size), c (batch, units)
    params = random_projected_params(0)
    flags = {**FLAGS, "go_backwards": True}
    expected = jlstm.lstm(params, x, initial_state=state, mask=mask, **flags)
    assert [e.shape for e in expected] == [(BATCH, TIME, PROJ), (BATCH, PROJ), (BATCH, UNITS)]

    linen_model = jlstm.linen.LSTM(UNITS, proj_size=PROJ, **flags)
    variables = linen_model.init(jax.random.key(1), x)
    assert_projected_init(jlstm.LSTMPParams(**variables["params"]))
    assert_same(linen_model.apply({"params": params._asdict()}, x, state, mask), expected)

    nnx_model = jlstm.nnx.LSTM(INPUT_DIM, UNITS, rngs=nnx.Rngs(1), proj_size=PROJ, **flags)
    assert_projected_init(nnx_model.params)
    set_nnx_lstm(nnx_model, params)
    assert_same(nnx_model.params, params)
    assert_same(nnx_model(x, state, mask), expected)

    # linen -> nnx: the same parameters mean the same thing, gradients of the projection included.
    set_nnx_lstm(nnx_model, jlstm.LSTMPParams(**variables["params"]))
    assert_same(nnx_model(x, state, mask), linen_model.apply(variables, x, state, mask))
    linen_grads = jax.grad(lambda v: jnp.sum(jnp.sin(linen_model.apply(v, x, state, mask)[0])))(variables)
    nnx_grads = nnx.grad(lambda m: jnp.sum(jnp.sin(m(x, state, mask)[0])))(nnx_model)
    pure_grads = jax.grad(lambda p: jnp.sum(jnp.sin(jlstm.lstm(p, x, initial_state=state, mask=mask, **flags)[0])))(
        jlstm.LSTMPParams(**variables["params"]))
    for name, want in pure_grads._asdict().items():
        assert_close(linen_grads["params"][name], want, "float32_grad")
        assert_close(nnx_grads[name][...], want, "float32_grad")


@pytest.mark.parametrize("merge_mode", ["concat", "sum"])
def test_projected_bidirectional_wrappers_equal_pure_with_copied_params(merge_mode):
    x, mask, state, _ = data()
    state = (state[0][:, :PROJ], state[1], state[2][:, :PROJ], state[3])
    fwd, bwd = random_projected_params(0), random_projected_params(1)
    expected = jlstm.bidirectional(fwd, bwd, x, merge_mode=merge_mode, initial_state=state, mask=mask, **FLAGS)
    assert expected[0].shape == (BATCH, TIME, PROJ * (2 if merge_mode == "concat" else 1))

    linen_model = jlstm.linen.Bidirectional(UNITS, merge_mode=merge_mode, proj_size=PROJ, **FLAGS)
    variables = linen_model.init(jax.random.key(1), x)
    for direction in ("forward", "backward"):
        assert_projected_init(jlstm.LSTMPParams(**variables["params"][direction]))
    copied = {"params": {"forward": fwd._asdict(), "backward": bwd._asdict()}}
    assert_same(linen_model.apply(copied, x, state, mask), expected)

    nnx_model = jlstm.nnx.Bidirectional(INPUT_DIM, UNITS, rngs=nnx.Rngs(1), merge_mode=merge_mode, proj_size=PROJ,
                                        **FLAGS)
    assert_projected_init(nnx_model.forward.params)
    assert_projected_init(nnx_model.backward.params)
    set_nnx_lstm(nnx_model.forward, fwd)
    set_nnx_lstm(nnx_model.backward, bwd)
    assert_same(nnx_model(x, state, mask), expected)


def test_the_loop_options_reach_the_pure_functions():
    """The pair that only the scan runs is refused, so remat_chunk and recurrence arrive; with the scan, the
    modules give the pure functions' numbers."""
    x, mask, _, _ = data()
    fwd, bwd = random_params(0), random_params(1)
    both = {"params": {"forward": fwd._asdict(), "backward": bwd._asdict()}}

    def modules(recurrence):
        """(module called on x, expected output) for linen's and nnx's LSTM and Bidirectional."""
        options = {"return_sequences": True, "remat_chunk": 2, "recurrence": recurrence}
        nnx_lstm = jlstm.nnx.LSTM(INPUT_DIM, UNITS, rngs=nnx.Rngs(0), **options)
        set_nnx_lstm(nnx_lstm, fwd)
        nnx_bi = jlstm.nnx.Bidirectional(INPUT_DIM, UNITS, rngs=nnx.Rngs(0), **options)
        set_nnx_lstm(nnx_bi.forward, fwd)
        set_nnx_lstm(nnx_bi.backward, bwd)
        lstm = jlstm.lstm(fwd, x, mask=mask, return_sequences=True)
        bi = jlstm.bidirectional(fwd, bwd, x, mask=mask, return_sequences=True)
        return [
            (lambda: jlstm.linen.LSTM(UNITS, **options).apply({"params": fwd._asdict()}, x, mask=mask), lstm),
            (lambda: jlstm.linen.Bidirectional(UNITS, **options).apply(both, x, mask=mask), bi),
            (lambda: nnx_lstm(x, mask=mask), lstm),
            (lambda: nnx_bi(x, mask=mask), bi),
        ]

    for call, _ in modules("fused"):
        with pytest.raises(ValueError, match="remat_chunk"):
            call()
    for call, expected in modules("scan"):
        assert_close(call(), expected)


def test_initialisers_match_init_params():
    """The same distributions as init_params: Glorot-uniform bounds, orthogonal rows, Keras's bias."""
    model = jlstm.nnx.LSTM(INPUT_DIM, UNITS, rngs=nnx.Rngs(0))
    variables = jlstm.linen.LSTM(UNITS).init(jax.random.key(0), jnp.ones((1, 1, INPUT_DIM)))["params"]
    pure = jlstm.init_params(jax.random.key(0), INPUT_DIM, UNITS)
    for p in (model.params, jlstm.LSTMParams(**variables), pure):
        limit = np.sqrt(6 / (INPUT_DIM + 4 * UNITS))
        assert np.abs(p.kernel).max() <= limit and np.abs(p.kernel).max() > limit / 2
        assert_close(p.recurrent_kernel @ p.recurrent_kernel.T, np.eye(UNITS))
        np.testing.assert_array_equal(p.bias, jlstm.init_params(jax.random.key(1), INPUT_DIM, UNITS).bias)


def test_half_precision_parameters():
    x = jnp.ones((2, 3, INPUT_DIM), jnp.bfloat16)
    linen_model = jlstm.linen.Bidirectional(UNITS, param_dtype=jnp.bfloat16)
    variables = linen_model.init(jax.random.key(0), x)
    assert {leaf.dtype for leaf in jax.tree.leaves(variables)} == {jnp.dtype(jnp.bfloat16)}
    nnx_model = jlstm.nnx.LSTM(INPUT_DIM, UNITS, rngs=nnx.Rngs(0), param_dtype=jnp.bfloat16)
    assert nnx_model.params.recurrent_kernel.dtype == jnp.bfloat16
    # Outputs have the state dtype, float32 for 16-bit params (the dtype policy in jlstm.lstm), and the pure
    # functions' numbers for the same 16-bit params.
    linen_out, nnx_out = linen_model.apply(variables, x), nnx_model(x)
    assert linen_out.dtype == nnx_out.dtype == jnp.float32
    halves = (jlstm.LSTMParams(**variables["params"][d]) for d in ("forward", "backward"))
    assert_same(linen_out, jlstm.bidirectional(*halves, x))
    assert_same(nnx_out, jlstm.lstm(nnx_model.params, x))


def test_computation_dtype_is_mixed_precision():
    """``dtype=bfloat16`` on float32 params: the pure call on cast params; float32 params and gradients."""
    x, mask, state, _ = data()
    fwd, bwd = random_params(0), random_params(1)
    bf16 = lambda p: jax.tree.map(lambda a: a.astype(jnp.bfloat16), p)
    expected = jlstm.lstm(bf16(fwd), x, initial_state=state[:2], mask=mask, **FLAGS)
    float32 = jlstm.lstm(fwd, x, initial_state=state[:2], mask=mask, **FLAGS)
    assert np.abs(expected[0] - float32[0]).max() > 1e-4  # 16-bit operands do round

    linen_model = jlstm.linen.LSTM(UNITS, dtype=jnp.bfloat16, **FLAGS)
    variables = {"params": fwd._asdict()}
    assert_same(linen_model.apply(variables, x, state[:2], mask), expected)
    nnx_model = jlstm.nnx.LSTM(INPUT_DIM, UNITS, rngs=nnx.Rngs(0), dtype=jnp.bfloat16, **FLAGS)
    set_nnx_lstm(nnx_model, fwd)
    assert_same(nnx_model(x, state[:2], mask), expected)
    assert nnx_model.kernel[...].dtype == jnp.float32

    def pure_loss(params):
        return jnp.sum(jlstm.lstm(bf16(params), x, mask=mask, return_sequences=True))

    linen_grads = jax.grad(lambda v: jnp.sum(linen_model.apply(v, x, None, mask)[0]))(variables)["params"]
    nnx_grads = nnx.grad(lambda m: jnp.sum(m(x, None, mask)[0]))(nnx_model)
    for grads in (jlstm.LSTMParams(**linen_grads), jlstm.LSTMParams(nnx_grads["kernel"][...],
                  nnx_grads["recurrent_kernel"][...], nnx_grads["bias"][...])):
        assert {g.dtype for g in grads} == {jnp.dtype(jnp.float32)}
        for actual, want in zip(grads, jax.grad(pure_loss)(fwd)):
            assert_close(actual, want, "float32_grad")

    bi_expected = jlstm.bidirectional(bf16(fwd), bf16(bwd), x, initial_state=state, mask=mask, **FLAGS)
    copied = {"params": {"forward": fwd._asdict(), "backward": bwd._asdict()}}
    assert_same(jlstm.linen.Bidirectional(UNITS, dtype=jnp.bfloat16, **FLAGS).apply(copied, x, state, mask),
                bi_expected)
    bi_nnx = jlstm.nnx.Bidirectional(INPUT_DIM, UNITS, rngs=nnx.Rngs(0), dtype=jnp.bfloat16, **FLAGS)
    set_nnx_lstm(bi_nnx.forward, fwd)
    set_nnx_lstm(bi_nnx.backward, bwd)
    assert_same(bi_nnx(x, state, mask), bi_expected)


def test_dropout_in_wrappers():
    x, mask, _, _ = data()
    key = jax.random.key(5)
    kw = {"dropout": 0.3, "recurrent_dropout": 0.2, "return_sequences": True}
    # nnx with an explicit key is exactly the pure function with that key.
    model = jlstm.nnx.LSTM(INPUT_DIM, UNITS, rngs=nnx.Rngs(0), **kw)
    pure = jlstm.lstm(model.params, x, mask=mask, training=True, key=key, **kw)
    assert_same(model(x, mask=mask, deterministic=False, rngs=key), pure)
    assert_same(model(x, mask=mask), jlstm.lstm(model.params, x, mask=mask, **kw))  # deterministic by default
    model.train()
    first, second = model(x, mask=mask), model(x, mask=mask)  # the stream advances: new masks each call
    assert not np.allclose(first, second)
    model.eval()
    assert_same(model(x, mask=mask), jlstm.lstm(model.params, x, mask=mask, **kw))
    bi = jlstm.nnx.Bidirectional(INPUT_DIM, UNITS, rngs=nnx.Rngs(0), **kw)
    pure = jlstm.bidirectional(bi.forward.params, bi.backward.params, x, mask=mask, training=True, key=key,
                               **kw)
    assert_same(bi(x, mask=mask, deterministic=False, rngs=key), pure)

    # linen: the key comes from the "dropout" stream; same stream key, same masks.
    for linen_model in (jlstm.linen.LSTM(UNITS, **kw), jlstm.linen.Bidirectional(UNITS, **kw)):
        variables = linen_model.init(jax.random.key(0), x)
        plain = linen_model.apply(variables, x, mask=mask)
        a = linen_model.apply(variables, x, mask=mask, deterministic=False, rngs={"dropout": key})
        b = linen_model.apply(variables, x, mask=mask, deterministic=False, rngs={"dropout": key})
        assert_same(a, b)
        assert not np.allclose(a, plain)
        with pytest.raises(Exception, match="dropout"):
            linen_model.apply(variables, x, deterministic=False)


def test_jit_and_grad():
    x, mask, _, target = data()
    model = jlstm.linen.LSTM(UNITS, return_sequences=True)
    variables = model.init(jax.random.key(0), x)

    def loss(params, apply):
        return jnp.mean((apply(params) - target) ** 2)

    grads = jax.jit(jax.grad(loss, argnums=0), static_argnums=1)(
        variables["params"], lambda p: model.apply({"params": p}, x, mask=mask)
    )
    def pure_loss(p):
        return jnp.mean((jlstm.lstm(p, x, mask=mask, return_sequences=True) - target) ** 2)

    expected = jax.grad(pure_loss)(jlstm.LSTMParams(**variables["params"]))
    for name in ("kernel", "recurrent_kernel", "bias"):
        assert_close(grads[name], getattr(expected, name), "float32_grad")

    nnx_model = jlstm.nnx.LSTM(INPUT_DIM, UNITS, rngs=nnx.Rngs(0), return_sequences=True)
    set_nnx_lstm(nnx_model, jlstm.LSTMParams(**variables["params"]))
    nnx_grads = nnx.jit(nnx.grad(lambda m: jnp.mean((m(x, mask=mask) - target) ** 2)))(nnx_model)
    for name in ("kernel", "recurrent_kernel", "bias"):
        assert_close(nnx_grads[name][...], getattr(expected, name), "float32_grad")


LINEN_MODELS = {
    "LSTM": lambda: jlstm.linen.LSTM(UNITS, return_sequences=True, dropout=0.1, recurrent_dropout=0.1),
    "Bidirectional": lambda: jlstm.linen.Bidirectional(UNITS, merge_mode="sum", return_sequences=True,
                                                       dropout=0.1),
}
NNX_MODELS = {
    "LSTM": lambda: jlstm.nnx.LSTM(INPUT_DIM, UNITS, rngs=nnx.Rngs(0), return_sequences=True, dropout=0.1,
                                   recurrent_dropout=0.1),
    "Bidirectional": lambda: jlstm.nnx.Bidirectional(INPUT_DIM, UNITS, rngs=nnx.Rngs(0), merge_mode="sum",
                                                     return_sequences=True, dropout=0.1),
}


# optax's adam mixes float and int32 in its bias correction, which strict promotion rejects.
optax_promotion = pytest.mark.usefixtures("standard_promotion")


@pytest.fixture
def standard_promotion():
    with jax.numpy_dtype_promotion("standard"):
        yield


@optax_promotion
@pytest.mark.parametrize("name", list(LINEN_MODELS))
def test_linen_optax_training_lowers_loss(name):
    x, mask, _, target = data()
    model = LINEN_MODELS[name]()
    params = model.init(jax.random.key(0), x)["params"]
    tx = optax.adam(3e-2)
    opt_state = tx.init(params)

    def loss(params, key=None):
        y = model.apply({"params": params}, x, mask=mask, deterministic=key is None,
                        rngs=None if key is None else {"dropout": key})
        return jnp.mean((y - target) ** 2)

    @jax.jit
    def train_step(params, opt_state, key):
        grads = jax.grad(loss)(params, key)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state

    before = loss(params)
    for key in jax.random.split(jax.random.key(1), 20):
        params, opt_state = train_step(params, opt_state, key)
    assert loss(params) < 0.9 * before


@optax_promotion
@pytest.mark.parametrize("name", list(NNX_MODELS))
def test_nnx_optax_training_lowers_loss(name):
    x, mask, _, target = data()
    model = NNX_MODELS[name]()
    optimizer = nnx.Optimizer(model, optax.adam(3e-2), wrt=nnx.Param)

    def loss(model):
        return jnp.mean((model(x, mask=mask) - target) ** 2)

    @nnx.jit
    def train_step(model, optimizer):
        grads = nnx.grad(loss)(model)
        optimizer.update(model, grads)

    model.eval()
    before = loss(model)
    model.train()
    for _ in range(20):
        train_step(model, optimizer)
    model.eval()
    assert loss(model) < 0.9 * before


def test_converted_weights_go_into_the_linen_and_nnx_modules():
    """from_torch's weights in both flax APIs: LSTM, projected LSTM and Bidirectional give torch's outputs, and
    the nnx modules give them back unchanged."""
    torch = pytest.importorskip("torch")
    x, _, _, _ = data()
    modules = {
        "lstm": (torch.nn.LSTM(INPUT_DIM, 5, batch_first=True), {}),
        "projected": (torch.nn.LSTM(INPUT_DIM, 5, proj_size=2, batch_first=True), {"proj_size": 2}),
        "bidirectional": (torch.nn.LSTM(INPUT_DIM, 5, bidirectional=True, batch_first=True), {}),
    }
    for name, (module, options) in modules.items():
        expected = module(torch.from_numpy(x))[0].detach().numpy()
        params = jlstm.from_torch(module)
        if name == "bidirectional":
            linen_model = jlstm.linen.Bidirectional(5, return_sequences=True)
            nnx_model = jlstm.nnx.Bidirectional.from_params(params, return_sequences=True)
            back = [nnx_model.forward.params, nnx_model.backward.params]
        else:
            params = jlstm.from_torch(module, as_list=False)
            linen_model = jlstm.linen.LSTM(5, return_sequences=True, **options)
            nnx_model = jlstm.nnx.LSTM.from_params(params, return_sequences=True)
            back = nnx_model.params
        y = linen_model.apply(jlstm.linen.variables_from_params(params), x)
        assert_close(y, expected)
        assert_same(nnx_model(x), y)
        assert_same(back, params)
        assert type(back) is type(params)


def test_from_params_takes_the_options_and_refuses_what_comes_from_the_params():
    x, mask, _, _ = data()
    params, other = random_params(0), random_params(1)
    kw = {"dropout": 0.3, "return_sequences": True, "go_backwards": True}
    model = jlstm.nnx.LSTM.from_params(params, rngs=nnx.Rngs(dropout=3), **kw)
    key = nnx.Rngs(dropout=3)["dropout"].fork()()  # the first key the module's forked stream draws
    assert_same(model(x, mask=mask), jlstm.lstm(params, x, mask=mask, **kw))
    assert_same(model(x, deterministic=False), jlstm.lstm(params, x, training=True, key=key, **kw))
    bf16 = jlstm.nnx.LSTM.from_params(jax.tree.map(lambda a: a.astype(jnp.bfloat16), params))
    assert bf16.kernel.dtype == jnp.bfloat16
    with pytest.raises(TypeError, match="units come from params"):
        jlstm.nnx.LSTM.from_params(params, units=4)
    with pytest.raises(TypeError, match="params must be a pair"):
        jlstm.nnx.Bidirectional.from_params(params)
    with pytest.raises(ValueError, match="the same shapes"):
        jlstm.nnx.Bidirectional.from_params((params, jlstm.init_params(jax.random.key(0), INPUT_DIM, 2)))
    with pytest.raises(TypeError, match="variables_from_params: params must be an LSTMParams"):
        jlstm.linen.variables_from_params([params])
    variables = jlstm.linen.variables_from_params((params, other))
    assert_same(jlstm.linen.Bidirectional(UNITS).apply(variables, x), jlstm.bidirectional(params, other, x))


@pytest.mark.parametrize("cls", ["LSTM", "Bidirectional"])
def test_nnx_dropout_without_a_stream_says_what_to_pass(cls):
    """An nnx.Rngs without a "dropout" (or "default") stream builds the module; a call that drops out then needs
    rngs, and a ValueError says so; given at call time, the key is used as the pure function uses it."""
    x, _, _, _ = data()
    key = jax.random.key(4)
    model = getattr(jlstm.nnx, cls)(INPUT_DIM, UNITS, rngs=nnx.Rngs(params=0), dropout=0.5)
    model(x)  # deterministic: no key needed
    model.train()
    with pytest.raises(ValueError, match=r"rngs: .*pass rngs=nnx.Rngs\(dropout=1\)"):
        model(x)
    with pytest.raises(ValueError, match="rngs"):
        model(x, rngs=nnx.Rngs(params=1))
    if cls == "LSTM":
        pure = jlstm.lstm(model.params, x, dropout=0.5, training=True, key=key)
    else:
        pure = jlstm.bidirectional(model.forward.params, model.backward.params, x, dropout=0.5, training=True,
                                   key=key)
    assert_same(model(x, rngs=key), pure)
    assert_same(model(x, rngs=nnx.Rngs(dropout=key)), model(x, rngs=nnx.Rngs(dropout=key)))
    with pytest.raises(TypeError, match="rngs must be an nnx.Rngs"):
        getattr(jlstm.nnx, cls)(INPUT_DIM, UNITS, rngs=0)
