"""Everything compared against PyTorch: lstm, lstm_cell and stacked_lstm against torch.nn.LSTM / LSTMCell with
the same weights, and the converters from_torch / to_torch; the projected LSTM (proj_size) likewise.

The converters' errors: test_bad_inputs.py.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

import jlstm
from conftest import COMPILER_OPTIONS, assert_bit_identical, assert_close, plan_id

RNG = np.random.default_rng(0)


def _random(*shape):
    return RNG.standard_normal(shape).astype(np.float32)


def _random_params(input_dim, units, key):
    """Params with a random bias, and a signed zero in it to catch sign flips."""
    params = jlstm.init_params(key, input_dim, units)
    bias = jax.random.normal(jax.random.fold_in(key, 1), params.bias.shape).at[0].set(-0.0)
    return params._replace(bias=bias)


def _run(jit, fn, *args):
    return (jax.jit(fn) if jit else fn)(*args)


@pytest.mark.parametrize("batch_first", [True, False])
def test_one_layer_matches_torch(jit, batch_first):
    torch.manual_seed(0)
    module = torch.nn.LSTM(3, 4, batch_first=batch_first)
    x = _random(2, 5, 3) if batch_first else _random(5, 2, 3)
    h0, c0 = _random(1, 2, 4), _random(1, 2, 4)
    with torch.no_grad():
        y, (h, c) = module(torch.from_numpy(x), (torch.from_numpy(h0), torch.from_numpy(c0)))
    [params] = jlstm.from_torch(module)

    def run(p, x):
        return jlstm.lstm(
            p,
            x,
            initial_state=(h0[0], c0[0]),
            time_major=not batch_first,
            return_sequences=True,
            return_state=True,
        )

    seq, h_j, c_j = _run(jit, run, params, x)
    assert_close(seq, y.numpy())
    assert_close(h_j, h.numpy()[0])
    assert_close(c_j, c.numpy()[0])


def test_lstm_cell_matches_torch():
    torch.manual_seed(1)
    cell = torch.nn.LSTMCell(3, 4)
    x, h0, c0 = _random(2, 3), _random(2, 4), _random(2, 4)
    with torch.no_grad():
        h, c = cell(torch.from_numpy(x), (torch.from_numpy(h0), torch.from_numpy(c0)))
    [params] = jlstm.from_torch(cell)
    state, y = jlstm.lstm_cell(params, jlstm.LSTMState(jnp.asarray(h0), jnp.asarray(c0)), jnp.asarray(x))
    assert_close(state.h, h.numpy())
    assert_close(y, h.numpy())
    assert_close(state.c, c.numpy())
    assert_bit_identical(jlstm.from_torch(cell.state_dict()), [params])


def test_bias_false_gives_zero_bias_and_matches_torch():
    torch.manual_seed(2)
    module = torch.nn.LSTM(3, 4, bias=False, batch_first=True)
    x = _random(2, 5, 3)
    with torch.no_grad():
        y, _ = module(torch.from_numpy(x))
    [params] = jlstm.from_torch(module)
    np.testing.assert_array_equal(params.bias, np.zeros(16, np.float32))
    assert_close(jlstm.lstm(params, x, return_sequences=True), y.numpy())


def test_state_dict_with_prefix_and_several_lstms():
    torch.manual_seed(3)
    model = torch.nn.ModuleDict({"enc": torch.nn.LSTM(3, 4, num_layers=2), "dec": torch.nn.LSTM(4, 2)})
    state = model.state_dict()
    assert_bit_identical(jlstm.from_torch(state, prefix="enc."), jlstm.from_torch(model["enc"]))
    dec_only = {k: v for k, v in state.items() if k.startswith("dec.")}
    assert_bit_identical(jlstm.from_torch(dec_only), jlstm.from_torch(model["dec"]))


def test_round_trip_jlstm_torch_jlstm_is_bit_identical():
    key = jax.random.key(0)
    params = [
        _random_params(input_dim, 4, jax.random.fold_in(key, i)) for i, input_dim in enumerate([3, 3, 8, 8])
    ]
    module = torch.nn.LSTM(3, 4, num_layers=2, bidirectional=True)
    assert jlstm.to_torch(params, module) is module
    assert_bit_identical(jlstm.from_torch(module), params)
    assert_bit_identical(jlstm.from_torch(module.state_dict()), params)
    np.testing.assert_array_equal(module.bias_hh_l1_reverse.detach().numpy(), np.zeros(16, np.float32))


def test_round_trip_torch_jlstm_torch_keeps_the_function():
    """bias_ih/bias_hh come back merged into bias_ih: same weights, same outputs."""
    torch.manual_seed(4)
    source = torch.nn.LSTM(3, 4, num_layers=2, batch_first=True)
    target = jlstm.to_torch(jlstm.from_torch(source), torch.nn.LSTM(3, 4, num_layers=2, batch_first=True))
    for name in ("weight_ih_l0", "weight_hh_l0", "weight_ih_l1", "weight_hh_l1"):
        assert torch.equal(getattr(target, name), getattr(source, name))
    x = torch.from_numpy(_random(2, 5, 3))
    with torch.no_grad():
        assert_close(target(x)[0].numpy(), source(x)[0].numpy())


def test_bfloat16_round_trip():
    torch.manual_seed(5)
    module = torch.nn.LSTM(3, 2).to(torch.bfloat16)
    with torch.no_grad():
        module.bias_hh_l0.zero_()
    [params] = jlstm.from_torch(module)
    assert params.kernel.dtype == jnp.bfloat16
    expected = module.weight_ih_l0.float().detach().numpy()
    np.testing.assert_array_equal(np.asarray(params.kernel.T, np.float32), expected)
    back = jlstm.to_torch([params], torch.nn.LSTM(3, 2).to(torch.bfloat16))
    assert_bit_identical(jlstm.from_torch(back), [params])


def test_a_bare_params_loads_a_single_layer():
    params = _random_params(3, 2, jax.random.key(1))
    assert_bit_identical(jlstm.from_torch(jlstm.to_torch(params, torch.nn.LSTM(3, 2))), [params])
    assert_bit_identical(jlstm.from_torch(jlstm.to_torch([params], torch.nn.LSTMCell(3, 2))), [params])


def test_to_torch_writes_nothing_when_it_refuses():
    key = jax.random.key(2)
    module = torch.nn.LSTM(3, 4, num_layers=2, bidirectional=True)
    good = [_random_params(d, 4, key) for d in (3, 3, 8, 8)]
    wrong_input = good[:2] + [_random_params(4, 4, key)] + good[3:]  # layer 1 reads 8 features, not 4
    before = [p.detach().clone() for p in module.parameters()]
    with pytest.raises(ValueError, match="params_list\\[2\\]"):
        jlstm.to_torch(wrong_input, module)
    assert all(torch.equal(p, b) for p, b in zip(module.parameters(), before, strict=True))


def test_worked_check_two_layer_bidirectional_batch_first(jit):
    """torch.nn.LSTM(num_layers=2, bidirectional=True, batch_first=True) == jlstm.stacked_lstm, and back."""
    torch.manual_seed(6)
    make = lambda: torch.nn.LSTM(3, 4, num_layers=2, bidirectional=True, batch_first=True)
    module = make()
    x, h0, c0 = _random(2, 5, 3), _random(4, 2, 4), _random(4, 2, 4)
    with torch.no_grad():
        y, (h, c) = module(torch.from_numpy(x), (torch.from_numpy(h0), torch.from_numpy(c0)))
    params = jlstm.from_torch(module)

    def run(p, x):
        return jlstm.stacked_lstm(
            p, x, bidirectional=True, initial_state=(h0, c0), return_sequences=True, return_state=True
        )

    for ours, theirs in zip(_run(jit, run, params, x), (y, h, c), strict=True):
        assert_close(ours, theirs.numpy())
    # jlstm -> torch -> jlstm returns the same bits, and the reloaded module the same outputs.
    reloaded = jlstm.to_torch(params, make())
    assert_bit_identical(jlstm.from_torch(reloaded), params)
    with torch.no_grad():
        assert_close(reloaded(torch.from_numpy(x))[0].numpy(), module(torch.from_numpy(x))[0].numpy())


# --- stacked_lstm against torch.nn.LSTM(num_layers) --------------------------------------------------------


def _stacked_to_torch(params_list, input_dim, units, num_layers, bidirectional):
    """torch.nn.LSTM(num_layers) holding ``params_list``, written by hand (not by to_torch)."""
    module = torch.nn.LSTM(input_dim, units, num_layers=num_layers, bidirectional=bidirectional, batch_first=True)
    directions = 2 if bidirectional else 1
    with torch.no_grad():
        for i, p in enumerate(params_list):
            suffix = f"l{i // directions}" + ("_reverse" if i % directions else "")
            getattr(module, f"weight_ih_{suffix}").copy_(torch.tensor(np.array(p.kernel).T))
            getattr(module, f"weight_hh_{suffix}").copy_(torch.tensor(np.array(p.recurrent_kernel).T))
            getattr(module, f"bias_ih_{suffix}").copy_(torch.tensor(np.array(p.bias)))
            getattr(module, f"bias_hh_{suffix}").zero_()
    return module


@pytest.mark.parametrize("bidirectional", [False, True], ids=["lstm", "bidirectional"])
def test_stacked_lstm_states_match_torch_num_layers(bidirectional, jit):
    """initial_state and the returned states are PyTorch's h_0/c_0 and h_n/c_n."""
    batch, time, input_dim, units, layers = 3, 6, 4, 3, 3
    params_list = jlstm.init_stacked_params(jax.random.key(0), input_dim, units, layers, bidirectional=bidirectional)
    rng = np.random.default_rng(0)
    params_list = [p._replace(bias=p.bias + jnp.asarray(rng.normal(size=4 * units), jnp.float32)) for p in params_list]
    rows = layers * (2 if bidirectional else 1)
    x = _random(batch, time, input_dim)
    h0, c0 = _random(rows, batch, units), _random(rows, batch, units)
    with torch.no_grad():
        module = _stacked_to_torch(params_list, input_dim, units, layers, bidirectional)
        y_t, (h_t, c_t) = module(torch.from_numpy(x), (torch.from_numpy(h0), torch.from_numpy(c0)))

    def run(params_list, x, h0, c0):
        return jlstm.stacked_lstm(params_list, x, bidirectional=bidirectional, initial_state=(h0, c0),
                                  return_sequences=True, return_state=True)

    y, h, c = _run(jit, run, params_list, x, h0, c0)
    for actual, expected in ((y, y_t), (h, h_t), (c, c_t)):
        assert actual.shape == tuple(expected.shape)
        assert_close(actual, expected.numpy())


# --- the projected LSTM (proj_size) against torch.nn.LSTM(proj_size) ---------------------------------------

PROJ_INPUT, PROJ_UNITS, PROJ_SIZE, PROJ_BATCH, PROJ_TIME = 3, 5, 2, 4, 5


def _projected_module(num_layers, bidirectional, batch_first, seed=0):
    torch.manual_seed(seed)
    return torch.nn.LSTM(PROJ_INPUT, PROJ_UNITS, num_layers=num_layers, bidirectional=bidirectional,
                         batch_first=batch_first, proj_size=PROJ_SIZE)


def _tags(num_layers, bidirectional):
    """PyTorch's parameter suffixes in jlstm's params_list order: _l0, _l0_reverse, _l1, ..."""
    suffixes = ("", "_reverse") if bidirectional else ("",)
    return [f"_l{layer}{suffix}" for layer in range(num_layers) for suffix in suffixes]


def _projected_problem(num_layers, bidirectional, batch_first, seed=0):
    """Inputs, (h0, c0) in PyTorch's shapes, and random weights for a loss linear in (output, h_n, c_n)."""
    rows = num_layers * (2 if bidirectional else 1)
    batch_time = (PROJ_BATCH, PROJ_TIME) if batch_first else (PROJ_TIME, PROJ_BATCH)
    rng = np.random.default_rng(seed)

    def normal(*shape):
        return rng.standard_normal(shape).astype(np.float32)

    x = normal(*batch_time, PROJ_INPUT)
    h0, c0 = normal(rows, PROJ_BATCH, PROJ_SIZE), normal(rows, PROJ_BATCH, PROJ_UNITS)
    weights = (normal(*batch_time, PROJ_SIZE * (2 if bidirectional else 1)), normal(*h0.shape), normal(*c0.shape))
    return x, h0, c0, weights


def _linear_loss(outputs, weights):
    return sum((o * w).sum() for o, w in zip(outputs, weights, strict=True))


def _torch_value_and_grads(module, x, h0, c0, weights, lengths=None):
    """(y, h_n, c_n) and PyTorch's autograd gradients: of x, h0, c0, and one LSTMPParams of gradients per layer
    and direction (weight_hr's as projection_kernel, bias_ih's as bias). With ``lengths``, x is packed."""
    from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

    module.zero_grad()
    x_t, h0_t, c0_t = (torch.from_numpy(a).requires_grad_() for a in (x, h0, c0))
    if lengths is None:
        y, (h, c) = module(x_t, (h0_t, c0_t))
    else:
        packed = pack_padded_sequence(x_t, torch.tensor(lengths), batch_first=module.batch_first,
                                      enforce_sorted=False)
        y, (h, c) = module(packed, (h0_t, c0_t))
        y, _ = pad_packed_sequence(y, batch_first=module.batch_first, total_length=x.shape[1])  # zeros past a length
    _linear_loss((y, h, c), [torch.from_numpy(w) for w in weights]).backward()
    params = [
        jlstm.LSTMPParams(*(getattr(module, f"{name}{tag}").grad.numpy().T
                            for name in ("weight_ih", "weight_hh", "bias_ih", "weight_hr")))
        for tag in _tags(module.num_layers, module.bidirectional)
    ]
    return [a.detach().numpy() for a in (y, h, c)], (params, x_t.grad.numpy(), h0_t.grad.numpy(), c0_t.grad.numpy())


def _jlstm_value_and_grads(params, x, h0, c0, weights, bidirectional, batch_first, mask=None, recurrence="auto"):
    def run(params, x, h0, c0):
        outputs = jlstm.stacked_lstm(params, x, bidirectional=bidirectional, initial_state=(h0, c0), mask=mask,
                                     time_major=not batch_first, return_sequences=True, return_state=True,
                                     recurrence=recurrence)
        if mask is not None:  # the valid steps only: jlstm repeats the last output past a length, torch pads zeros
            outputs = (jnp.where(mask[..., None], outputs[0], 0), *outputs[1:])
        return _linear_loss(outputs, weights), outputs

    value_and_grad = jax.jit(jax.value_and_grad(run, argnums=(0, 1, 2, 3), has_aux=True),
                             compiler_options=COMPILER_OPTIONS)
    (_, outputs), grads = value_and_grad(params, x, h0, c0)
    return outputs, grads


def _assert_outputs_and_grads(actual, expected):
    (outputs, grads), (want_outputs, want_grads) = actual, expected
    for a, e in zip(outputs, want_outputs, strict=True):
        assert a.shape == e.shape
        assert_close(a, e)
    assert all(isinstance(p, jlstm.LSTMPParams) for p in grads[0])
    for a, e in zip(jax.tree.leaves(grads), jax.tree.leaves(want_grads), strict=True):
        assert a.shape == e.shape
        assert_close(a, e, "float32_grad")


@pytest.mark.parametrize("batch_first", [True, False], ids=["batch_first", "time_first"])
@pytest.mark.parametrize("bidirectional", [False, True], ids=["lstm", "bidirectional"])
@pytest.mark.parametrize("num_layers", [1, 2, 3], ids=lambda n: f"{n}_layers")
def test_projected_matches_torch_outputs_states_and_gradients(num_layers, bidirectional, batch_first):
    """output (B, T, D * P), h_n (L * D, B, P), c_n (L * D, B, H), and the gradients of every weight (weight_hr
    included), of the input and of (h0, c0): those of torch.nn.LSTM(proj_size=P) with the same weights."""
    module = _projected_module(num_layers, bidirectional, batch_first)
    x, h0, c0, weights = _projected_problem(num_layers, bidirectional, batch_first)
    expected = _torch_value_and_grads(module, x, h0, c0, weights)
    params = jlstm.from_torch(module)
    assert [p.projection_kernel.shape for p in params] == [(PROJ_UNITS, PROJ_SIZE)] * len(params)
    _assert_outputs_and_grads(_jlstm_value_and_grads(params, x, h0, c0, weights, bidirectional, batch_first), expected)


@functools.cache
def _projected_reference():
    """The configuration every recurrence runs: 2 layers, bidirectional, time first (jlstm's time_major)."""
    module = _projected_module(2, True, False, seed=1)
    x, h0, c0, weights = _projected_problem(2, True, False, seed=1)
    return jlstm.from_torch(module), (x, h0, c0, weights), _torch_value_and_grads(module, x, h0, c0, weights)


# Every plan is compared with the scan in tests/test_plan.py; here each recurrence against torch, and the two
# plans that change the most (features first, and the input projection hoisted out of the loop).
@pytest.mark.parametrize(
    "recurrence",
    ["scan", "step", "fused", jlstm.Plan(layout="features"), jlstm.Plan(projection="hoisted")],
    ids=plan_id,
)
def test_projected_every_recurrence_matches_torch(recurrence):
    params, problem, expected = _projected_reference()
    actual = _jlstm_value_and_grads(params, *problem, bidirectional=True, batch_first=False, recurrence=recurrence)
    _assert_outputs_and_grads(actual, expected)


@pytest.mark.parametrize("bidirectional", [False, True], ids=["lstm", "bidirectional"])
def test_projected_packed_sequences_match_masks(bidirectional):
    """pack_padded_sequence(enforce_sorted=False) over 2 layers is a mask of the valid steps: the same outputs at
    those steps (zeros past a length in both for bidirectional), the states at each row's last valid step, the
    same gradients; padding (NaN here) touches nothing."""
    module = _projected_module(2, bidirectional, True, seed=2)
    x, h0, c0, weights = _projected_problem(2, bidirectional, True, seed=2)
    lengths = [3, 5, 1, 4]  # unsorted, one full row, one of a single step
    mask = np.arange(PROJ_TIME)[None, :] < np.array(lengths)[:, None]
    x = np.where(mask[..., None], x, np.float32(np.nan))
    expected = _torch_value_and_grads(module, x, h0, c0, weights, lengths)
    actual = _jlstm_value_and_grads(jlstm.from_torch(module), x, h0, c0, weights, bidirectional, True, mask=mask)
    _assert_outputs_and_grads(actual, expected)
    if bidirectional:  # jlstm's own output is already zero past a length (Keras's Bidirectional)
        y = jlstm.stacked_lstm(jlstm.from_torch(module), x, bidirectional=True, initial_state=(h0, c0), mask=mask,
                               return_sequences=True)
        assert_close(y, expected[0][0])


def test_lstm_cell_with_projection_is_one_step_of_torch(jit):
    module = _projected_module(1, False, True, seed=3)
    x, h0, c0 = _random(2, PROJ_INPUT), _random(2, PROJ_SIZE), _random(2, PROJ_UNITS)
    with torch.no_grad():
        y, (h, c) = module(torch.from_numpy(x[:, None]), (torch.from_numpy(h0[None]), torch.from_numpy(c0[None])))
    [params] = jlstm.from_torch(module)
    state, out = _run(jit, jlstm.lstm_cell, params, jlstm.LSTMState(h0, c0), x)
    assert isinstance(state, jlstm.LSTMState) and state.h.shape == (2, PROJ_SIZE) and state.c.shape == (2, PROJ_UNITS)
    assert_close(out, y.numpy()[:, 0])
    assert_close(state.h, h.numpy()[0])
    assert_close(state.c, c.numpy()[0])


def _random_projected_params_list(num_layers, bidirectional, input_dim, units, proj_size, key):
    params = jlstm.init_stacked_params(key, input_dim, units, num_layers, bidirectional=bidirectional,
                                       proj_size=proj_size)
    return [p._replace(bias=jax.random.normal(jax.random.fold_in(key, i), p.bias.shape).at[0].set(-0.0))
            for i, p in enumerate(params)]


def test_projected_round_trips_through_modules_and_state_dicts_with_a_prefix():
    """jlstm -> torch -> jlstm is bit-identical (weight_hr = projection_kernel.T), read from the module or from a
    state dict holding two projected LSTMs; torch -> jlstm -> torch keeps every weight and the outputs."""
    params = _random_projected_params_list(2, True, 3, 5, 2, jax.random.key(4))
    torch.manual_seed(4)
    model = torch.nn.ModuleDict({
        "enc": torch.nn.LSTM(3, 5, num_layers=2, bidirectional=True, proj_size=2),
        "dec": torch.nn.LSTM(4, 6, num_layers=2, batch_first=True, proj_size=3),
    })
    assert jlstm.to_torch(params, model["enc"]) is model["enc"]
    for tag, p in zip(_tags(2, True), params, strict=True):
        np.testing.assert_array_equal(getattr(model["enc"], f"weight_hr{tag}").detach().numpy(), p.projection_kernel.T)
    state = model.state_dict()
    assert_bit_identical(jlstm.from_torch(model["enc"]), params)
    assert_bit_identical(jlstm.from_torch(state, prefix="enc."), params)

    dec = jlstm.from_torch(state, prefix="dec.")
    shapes = [((4, 24), (3, 24), (24,), (6, 3)), ((3, 24), (3, 24), (24,), (6, 3))]  # layer 1 reads proj_size
    assert [tuple(map(np.shape, p)) for p in dec] == shapes
    assert_bit_identical(dec, jlstm.from_torch(model["dec"]))
    target = jlstm.to_torch(dec, torch.nn.LSTM(4, 6, num_layers=2, batch_first=True, proj_size=3))
    for name in ("weight_ih", "weight_hh", "weight_hr"):
        for tag in _tags(2, False):
            assert torch.equal(getattr(target, name + tag), getattr(model["dec"], name + tag))
    x = torch.from_numpy(_random(2, 5, 4))
    with torch.no_grad():
        for ours, theirs in zip(jax.tree.leaves(target(x)), jax.tree.leaves(model["dec"](x)), strict=True):
            assert_close(ours.numpy(), theirs.numpy())


def test_to_torch_writes_nothing_when_it_refuses_a_projection_mismatch():
    """A projected module refuses a plain LSTMParams for its second layer before writing the first."""
    module = torch.nn.LSTM(3, 5, num_layers=2, proj_size=2)
    good = _random_projected_params_list(2, False, 3, 5, 2, jax.random.key(5))
    plain = _random_params(2, 5, jax.random.key(6))  # the second layer's input width, without a projection
    before = [p.detach().clone() for p in module.parameters()]
    with pytest.raises(TypeError, match="params_list\\[1\\] must be an LSTMPParams"):
        jlstm.to_torch([good[0], plain], module)
    assert all(torch.equal(p, b) for p, b in zip(module.parameters(), before, strict=True))
    jlstm.to_torch(good, module)  # the right list is written
    assert_bit_identical(jlstm.from_torch(module), good)


def test_as_list_false_gives_the_bare_params_of_one_layer():
    """A one-layer, one-direction module (or a cell) converts to params that lstm takes as they are."""
    x = _random(2, 6, 3)
    module = torch.nn.LSTM(3, 4, batch_first=True)
    params = jlstm.from_torch(module, as_list=False)
    assert isinstance(params, jlstm.LSTMParams)
    assert_bit_identical(params, jlstm.from_torch(module)[0])
    assert_close(jlstm.lstm(params, x, return_sequences=True), module(torch.from_numpy(x))[0].detach().numpy())
    cell = torch.nn.LSTMCell(3, 4)
    assert_bit_identical(jlstm.from_torch(cell.state_dict(), as_list=False), jlstm.from_torch(cell)[0])
    projected = jlstm.from_torch(torch.nn.LSTM(3, 4, proj_size=2), as_list=False)
    assert isinstance(projected, jlstm.LSTMPParams)
    for several in (torch.nn.LSTM(3, 4, num_layers=2), torch.nn.LSTM(3, 4, bidirectional=True)):
        with pytest.raises(ValueError, match=r"as_list=False .* got 2"):
            jlstm.from_torch(several, as_list=False)
    with pytest.raises(TypeError, match="as_list must be a Python bool"):
        jlstm.from_torch(module, as_list="no")
