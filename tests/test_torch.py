"""from_torch / to_torch against torch.nn.LSTM and torch.nn.LSTMCell."""

import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from conftest import assert_bit_identical, assert_close

import jlstm

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


def test_import_jlstm_does_not_import_frameworks():
    code = (
        "import sys, jlstm; jlstm.from_torch, jlstm.to_torch, jlstm.from_keras, jlstm.to_keras; "
        "print(sorted(m for m in ('torch', 'keras', 'tensorflow', 'flax', 'optax', 'orbax') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


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
    with pytest.raises(ValueError, match=r"several: prefixes \['dec\.', 'enc\.'\]; pass prefix="):
        jlstm.from_torch(state)
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


@pytest.mark.parametrize(
    "module, error, message",
    [
        (torch.nn.GRU(3, 2), TypeError, "expected a torch.nn.LSTM or torch.nn.LSTMCell, got GRU"),
        (torch.nn.RNN(3, 2), TypeError, "got RNN"),
        (torch.nn.LSTM(3, 4, proj_size=2), ValueError, r"proj_size > 0 \(here 2\) is not supported yet"),
    ],
    ids=["gru", "rnn", "proj_size"],
)
def test_from_torch_rejects_other_modules(module, error, message):
    with pytest.raises(error, match=message):
        jlstm.from_torch(module)


def test_from_torch_rejects_other_state_dicts():
    gru = r"weight_hh_l0 must have shape \(4 \* hidden_size, hidden_size\), got \(6, 2\) \(3 gates"
    with pytest.raises(ValueError, match=gru):
        jlstm.from_torch(torch.nn.GRU(3, 2).state_dict())
    with pytest.raises(ValueError, match=r"proj_size > 0 \(weight_hr_l\* keys\) is not supported yet"):
        jlstm.from_torch(torch.nn.LSTM(3, 4, proj_size=2).state_dict())
    with pytest.raises(ValueError, match="expected the state dict of one torch.nn.LSTM"):
        jlstm.from_torch({"weight": torch.zeros(2)})
    with pytest.raises(TypeError, match="expected a torch.nn.LSTM, a torch.nn.LSTMCell or a state dict, got"):
        jlstm.from_torch([])


def test_to_torch_rejects_what_does_not_fit():
    key = jax.random.key(2)
    module = torch.nn.LSTM(3, 4, num_layers=2, bidirectional=True)
    good = [_random_params(d, 4, key) for d in (3, 3, 8, 8)]
    needs = r"needs 4 LSTMParams \(one per layer and direction: l0, l0_reverse, l1, l1_reverse\), got 2"
    with pytest.raises(ValueError, match=needs):
        jlstm.to_torch(good[:2], module)
    wrong_input = good[:2] + [_random_params(4, 4, key)] + good[3:]
    with pytest.raises(
        ValueError,
        match=r"params_list\[2\]\.kernel must have shape \(input_dim, 4 \* hidden_size\) = \(8, 16\) "
        r"for weights_l1 of LSTM\(3, 4, num_layers=2, bidirectional=True\), got \(4, 16\)",
    ):
        jlstm.to_torch(wrong_input, module)
    with pytest.raises(ValueError, match=r"params_list\[0\]\.kernel must have shape .* \(3, 16\) .*\(3, 8"):
        jlstm.to_torch([_random_params(3, 2, key)], torch.nn.LSTM(3, 4))
    with pytest.raises(ValueError, match=r"to_torch: bias must have shape \(16,\), got \(15,\)"):
        ok = _random_params(3, 4, key)
        jlstm.to_torch([ok._replace(bias=ok.bias[:15])], torch.nn.LSTMCell(3, 4))
    with pytest.raises(ValueError, match=r"bias=False, so params_list\[0\]\.bias must be all zeros"):
        jlstm.to_torch([_random_params(3, 4, key)], torch.nn.LSTM(3, 4, bias=False))
    with pytest.raises(ValueError, match="not supported yet"):
        jlstm.to_torch([_random_params(3, 2, key)], torch.nn.LSTM(3, 4, proj_size=2))
    with pytest.raises(TypeError, match="got GRU"):
        jlstm.to_torch([_random_params(3, 2, key)], torch.nn.GRU(3, 2))
    # Nothing was written before the error: the module still holds its own weights.
    before = module.weight_ih_l0.detach().clone()
    with pytest.raises(ValueError):
        jlstm.to_torch(wrong_input, module)
    assert torch.equal(module.weight_ih_l0, before)


def test_worked_check_two_layer_bidirectional_batch_first(jit):
    """torch.nn.LSTM(num_layers=2, bidirectional=True, batch_first=True) == jlstm.stacked_lstm, and back."""
    torch.manual_seed(6)
    make = lambda: torch.nn.LSTM(3, 4, num_layers=2, bidirectional=True, batch_first=True)  # noqa: E731
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
