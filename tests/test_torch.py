"""Everything compared against PyTorch: lstm, lstm_cell and stacked_lstm against torch.nn.LSTM / LSTMCell with
the same weights, and the converters from_torch / to_torch.

The converters' errors: test_bad_inputs.py.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

import jlstm
from conftest import assert_bit_identical, assert_close

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
