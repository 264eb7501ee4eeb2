# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # An LSTM is a pure function
#
# An LSTM layer is a loop over one small function, the *step*: it takes the weights, what the layer remembers
# so far (the *carry*: the hidden state `h` and the cell state `c`) and one input, and returns the new carry.
# Nothing else is hidden anywhere. In this notebook you will
#
# 1. write the step yourself in a few lines of `jax.numpy`, and run it over a sequence with `jax.lax.scan`;
# 2. check your numbers against `jlstm.lstm_cell`, `jlstm.lstm` and Keras;
# 3. see what the layer returns for each of Keras's two flags, and what the carry is;
# 4. transform the whole layer with `jit`, `grad`, `vmap` and `jvp`, and use forward mode to *see* vanishing and
#    exploding gradients.
#
# [Download this notebook](01_pure_function.ipynb) to run it yourself (`pip install "jlstm[tutorials]"`).

# %% [markdown]
# Everything we need: JAX, NumPy for printing, matplotlib for the pictures, and jlstm.

# %%
import importlib.util
import os

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np

import jlstm

np.set_printoptions(precision=5, suppress=True)

# %% [markdown]
# ## 1. The step, by hand
#
# The weights come in Keras's fused layout: one `kernel` `(input_dim, 4 * units)` for the input, one
# `recurrent_kernel` `(units, 4 * units)` for the previous `h`, and one `bias` `(4 * units,)`. One matmul gives
# all four gates at once; we split the result into four blocks, in Keras's order: input gate `i`, forget gate
# `f`, candidate `g`, output gate `o`.

# %%
def step(params, carry, x):
    h, c = carry
    z = x @ params.kernel + h @ params.recurrent_kernel + params.bias
    z_i, z_f, z_g, z_o = jnp.split(z, 4, axis=-1)
    i, f, o = jax.nn.sigmoid(z_i), jax.nn.sigmoid(z_f), jax.nn.sigmoid(z_o)
    c = f * c + i * jnp.tanh(z_g)  # forget some old memory, write some new
    h = o * jnp.tanh(c)  # show part of the memory as the output
    return (h, c), h


# %% [markdown]
# That is the whole LSTM. Let's make some weights. `jlstm.init_params` draws them with Keras's initialisers
# (Glorot-uniform kernel, orthogonal recurrent kernel, forget-gate bias 1). A batch of 2 sequences of 5 steps
# with 3 features, and 4 units:

# %%
params = jlstm.init_params(jax.random.key(0), input_dim=3, units=4)
xs = jax.random.normal(jax.random.key(1), (2, 5, 3))  # (batch, time, features)
print({name: field.shape for name, field in zip(params._fields, params)})

# %% [markdown]
# One step, from a zero carry, on the first time step of each sequence:

# %%
zeros = jnp.zeros((2, 4))
(h1, c1), y1 = step(params, (zeros, zeros), xs[:, 0])
print("h after one step:\n", h1)

# %% [markdown]
# `jlstm.lstm_cell` is the library's step. Same weights, same input: the largest difference should be zero or a
# few float32 roundings (around `1e-7`).

# %%
state, y = jlstm.lstm_cell(params, jlstm.LSTMState(zeros, zeros), xs[:, 0])
print("largest difference:", float(jnp.max(jnp.abs(state.h - h1))))

# %% [markdown]
# ## 2. The loop is `lax.scan`
#
# `jax.lax.scan(f, carry, xs)` calls `f(carry, x)` for each `x` along the first axis of `xs`, threads the carry
# through, and stacks the outputs. The step already has that signature once the weights are bound, so the layer
# is a few lines. `scan` walks over the first axis, so we put time first and back again.

# %%
def my_lstm(params, xs):
    zeros = jnp.zeros((xs.shape[0], params.units))
    xs_time_first = jnp.swapaxes(xs, 0, 1)
    (h, c), ys = jax.lax.scan(
        lambda carry, x: step(params, carry, x), (zeros, zeros), xs_time_first
    )
    return jnp.swapaxes(ys, 0, 1), h, c


sequence, h, c = my_lstm(params, xs)
print("outputs:", sequence.shape, " final h:", h.shape, " final c:", c.shape)

# %% [markdown]
# `jlstm.lstm` with both flags on returns the same three things. Compare all three:

# %%
reference = jlstm.lstm(params, xs, return_sequences=True, return_state=True)
for name, mine, ref in zip(["sequence", "h", "c"], (sequence, h, c), reference):
    print(f"{name:8s} largest difference {jnp.max(jnp.abs(mine - ref)):.1e}")
    assert jnp.allclose(mine, ref, atol=1e-6)

# %% [markdown]
# Differences of order `1e-7` are float32 rounding: `jlstm.lstm` adds the same numbers in another order (for
# speed it may, for instance, compute `x @ kernel` for all steps at once before the loop).

# %% [markdown]
# ## 3. The four flag combinations, and the carry
#
# The seed example of every Keras tutorial: `LSTM(1)` on the sequence `[0.1, 0.2, 0.3]` (one sequence, three
# steps, one feature). Two flags decide what comes back:
#
# - `return_sequences`: every step's output `h_t`, or only the last one;
# - `return_state`: also return the final carry `(h, c)`.

# %%
params1 = jlstm.init_params(jax.random.key(42), input_dim=1, units=1)
x1 = jnp.array([0.1, 0.2, 0.3]).reshape(1, 3, 1)

FLAGS = [
    {},
    {"return_sequences": True},
    {"return_state": True},
    {"return_sequences": True, "return_state": True},
]
results = [jlstm.lstm(params1, x1, **flags) for flags in FLAGS]
for flags, result in zip(FLAGS, results):
    print(flags)
    parts = result if isinstance(result, tuple) else (result,)
    for part in parts:
        print(f"    {np.asarray(part).ravel()!s:28s} shape {part.shape}")

# %% [markdown]
# Look at the numbers: the default output is the *last* element of the sequence, and it is also `h`. The output
# of an LSTM *is* its hidden state; `return_state` adds `c`, the cell state, which is never an output.
#
# The carry `(h, c)` is everything the layer remembers. Run the first two steps, keep the carry, and start the
# last step from it: you get exactly the result of running all three steps at once.

# %%
_, h2, c2 = jlstm.lstm(params1, x1[:, :2], return_state=True)
_, h3, c3 = jlstm.lstm(
    params1, x1[:, 2:], initial_state=(h2, c2), return_state=True
)
_, h_all, c_all = results[2]
print("two steps, then one more:", np.asarray(h3).ravel())
print("all three at once:       ", np.asarray(h_all).ravel())
assert jnp.allclose(h3, h_all, atol=1e-7) and jnp.allclose(c3, c_all, atol=1e-7)

# %% [markdown]
# ### The same four, in Keras
#
# With TensorFlow installed, we build Keras's `LSTM(1)` for each flag combination, give it the same weights,
# and compare. (Keras's weights are the same three arrays in the same layout, so `set_weights` takes them as
# they are.) Without TensorFlow the cell says so and skips.

# %%
if importlib.util.find_spec("tensorflow") is None:
    print("TensorFlow is not installed: skipping the comparison with Keras.")
else:
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # quiet start-up log
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")  # no oneDNN notice
    import keras

    print("Keras", keras.__version__)
    for flags, ours in zip(FLAGS, results):
        layer = keras.layers.LSTM(1, **flags)
        layer.build(x1.shape)
        layer.set_weights([np.asarray(w) for w in params1])
        theirs = layer(np.asarray(x1))
        if not flags.get("return_state"):
            ours, theirs = [ours], [theirs]
        pairs = zip(ours, theirs)
        diff = max(np.max(np.abs(a - np.asarray(b))) for a, b in pairs)
        print(f"{flags!s:48s} largest difference {diff:.1e}")
        assert diff < 1e-6

# %% [markdown]
# ## 4. A pure function can be transformed
#
# `jlstm.lstm` has no hidden state, no random numbers and no side effects: its result depends only on its
# arguments. That is what lets JAX transform it.
#
# **`jit`** traces the function once and compiles it with XLA; later calls with the same shapes run the
# compiled program. The numbers are the same.

# %%
fast_lstm = jax.jit(lambda params, xs: jlstm.lstm(params, xs))
difference = jnp.max(jnp.abs(fast_lstm(params, xs) - jlstm.lstm(params, xs)))
print(f"jit: largest difference {difference:.1e}")

# %% [markdown]
# **`grad`** differentiates a scalar function of the weights. Here a squared-error loss against a target of
# zeros; the gradient has the structure of the weights: an `LSTMParams` of three arrays.

# %%
def loss(params, xs, target):
    return jnp.mean((jlstm.lstm(params, xs) - target) ** 2)


target = jnp.zeros((2, 4))
grads = jax.grad(loss)(params, xs, target)
print(type(grads).__name__, {n: g.shape for n, g in zip(grads._fields, grads)})

# %% [markdown]
# Is it right? Nudge one weight by a small `eps` both ways and look at the change of the loss (a central
# difference). The two numbers should agree to about three digits (float32 limits the finite difference).

# %%
eps = 1e-3
nudge = jnp.zeros_like(params.kernel).at[0, 0].set(eps)
up = loss(params._replace(kernel=params.kernel + nudge), xs, target)
down = loss(params._replace(kernel=params.kernel - nudge), xs, target)
print(f"grad:              {grads.kernel[0, 0]:.6f}")
print(f"finite difference: {(up - down) / (2 * eps):.6f}")

# %% [markdown]
# **`vmap`** turns a function of one thing into a function of a batch of things. Here the "thing" is a whole
# set of weights: we draw 16 independent LSTMs (one key each) and run them all on the same input in one call.
# Each `LSTMParams` field gets a leading axis of 16.

# %%
keys = jax.random.split(jax.random.key(7), 16)
many_params = jax.vmap(
    lambda k: jlstm.init_params(k, input_dim=3, units=4)
)(keys)
many_outputs = jax.vmap(lambda p: jlstm.lstm(p, xs))(many_params)
print("kernels:", many_params.kernel.shape, " outputs:", many_outputs.shape)

# %% [markdown]
# The same as a Python loop over the 16 sets, one call at a time:

# %%
one_by_one = []
for n in range(16):
    params_n = jax.tree.map(lambda a, n=n: a[n], many_params)  # the n-th set
    one_by_one.append(jlstm.lstm(params_n, xs))
difference = jnp.max(jnp.abs(many_outputs - jnp.stack(one_by_one)))
print("largest difference from the loop:", float(difference))

# %% [markdown]
# ## 5. Forward mode: how much does the start still matter?
#
# Training an LSTM needs the gradient of a late output with respect to early states. By the chain rule, that
# gradient passes through the Jacobian of the final carry with respect to the initial one, `J = d(h_T, c_T) / d(h_0, c_0)`. If `J`
# shrinks towards zero as `T` grows, the early steps stop mattering (vanishing gradients); if it grows, they
# matter too much (exploding gradients).
#
# `jax.jvp(f, (s,), (t,))` computes `f(s)` and the directional derivative `J t` in one forward pass. Pushing
# every unit vector `t` through (with `vmap`) gives `J` column by column.
#
# To use one compiled function for every length `T`, we pass a mask: a masked step leaves the carry unchanged,
# so running 100 steps with only the first `T` unmasked gives the carry after `T` steps.

# %%
T_MAX, UNITS = 100, 8
inputs = jax.random.normal(jax.random.key(3), (1, T_MAX, 4))


def final_carry(params, carry0, steps):
    mask = (jnp.arange(T_MAX) < steps)[None]  # True for the first `steps`
    h0, c0 = carry0[:, :UNITS], carry0[:, UNITS:]
    _, h, c = jlstm.lstm(
        params, inputs, initial_state=(h0, c0), mask=mask, return_state=True
    )
    return jnp.concatenate([h, c], axis=-1)  # (1, 2 * UNITS)


def jacobian(params, steps):
    carry0 = jnp.zeros((1, 2 * UNITS))

    def f(carry):
        return final_carry(params, carry, steps)

    def column(t):  # J @ t, in one forward pass
        return jax.jvp(f, (carry0,), (t,))[1]

    directions = jnp.eye(2 * UNITS)[:, None, :]  # unit vectors, like carry0
    return jax.vmap(column)(directions)[:, 0, :].T  # J[i, j] = d out_i / d in_j

# %% [markdown]
# Check it against `jax.jacfwd`, JAX's ready-made forward-mode Jacobian (built on the same `jvp`):

# %%
lstm_params = jlstm.init_params(jax.random.key(1), input_dim=4, units=UNITS)
J = jacobian(lstm_params, 10)
carry0 = jnp.zeros((1, 2 * UNITS))
J_ref = jax.jacfwd(lambda s: final_carry(lstm_params, s, 10))(carry0)
J_ref = J_ref[0, :, 0, :]  # drop the batch axes of 1
print("J:", J.shape, " largest difference:", float(jnp.max(jnp.abs(J - J_ref))))

# %% [markdown]
# The singular values of `J` say how much it stretches or shrinks each direction of the initial carry. We compute
# them for every length from 1 to 100 (`vmap` over the length, too), for four sets of weights:
#
# - Keras's initialisation, as drawn;
# - the forget gate held open (its bias set to +5, so `f` is close to 1 and `c` is kept);
# - the forget gate held shut (bias -3: `c` is wiped at every step);
# - a recurrent kernel 8 times larger, with the forget gate open.

# %%
@jax.jit
def singular_values(params):
    def at_length(n):
        return jnp.linalg.svd(jacobian(params, n), compute_uv=False)

    return jax.vmap(at_length)(jnp.arange(1, T_MAX + 1))


def forget_bias(params, value):  # the f block of the gates (i, f, g, o)
    return params._replace(bias=params.bias.at[UNITS:2 * UNITS].set(value))


loud = lstm_params._replace(recurrent_kernel=8 * lstm_params.recurrent_kernel)
variants = {
    "Keras's initialisation": lstm_params,
    "forget gate open (bias +5)": forget_bias(lstm_params, 5.0),
    "forget gate shut (bias -3)": forget_bias(lstm_params, -3.0),
    "recurrent kernel x 8, gate open": forget_bias(loud, 5.0),
}
spectra = {name: np.asarray(singular_values(p)) for name, p in variants.items()}
print("largest singular value after    1 step  10 steps 100 steps")
for name, s in spectra.items():
    print(f"{name:31s} {s[0, 0]:8.2e} {s[9, 0]:8.2e} {s[99, 0]:8.2e}")

# %% [markdown]
# The plot: on the left the largest singular value for each set of weights, on the right every singular value for
# Keras's initialisation. The vertical axis is logarithmic.

# %%
fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
lengths = np.arange(1, T_MAX + 1)
for name, s in spectra.items():
    left.semilogy(lengths, np.maximum(s[:, 0], 1e-30), label=name)
left.axhline(1.0, color="gray", lw=0.8, ls="--")
left.set(xlabel="sequence length T", ylabel="largest singular value of J",
         ylim=(1e-12, 1e4), title="How much the initial carry still matters")
left.legend(fontsize=8)
keras_init = np.maximum(spectra["Keras's initialisation"], 1e-30)
right.semilogy(lengths, keras_init, color="tab:blue", lw=0.8)
right.set(xlabel="sequence length T", ylabel="singular values of J",
          ylim=(1e-12, 1e1), title="Every singular value, Keras's init")
fig.tight_layout()
plt.show()

# %% [markdown]
# What to look at:
#
# - With Keras's initialisation (blue) the largest singular value falls by about a factor 10 every 12 steps:
#   after 100 steps the initial carry hardly matters any more. That is the *vanishing gradient*: the gradient of
#   a late loss with respect to an early input is just as small.
# - With the forget gate shut it falls much faster, to exactly zero in float32 by step 50: `c` is erased at every
#   step, and only the weak path through `h` is left.
# - With the forget gate open it never falls below 1: the cell state `c` is carried on nearly unchanged, the
#   "constant error carousel" that LSTMs were invented for. This is why Keras starts the forget bias at 1
#   (`unit_forget_bias`). It even grows slowly, to about 75 after 100 steps.
# - With the large recurrent kernel it grows fast, past 40 within 10 steps: *exploding* gradients, the reason
#   to clip gradients when training.
#
# The right-hand panel shows that not all directions fade alike: a few directions of the carry survive much
# longer than the others.
#
# Next: the notebook "Digits, row by row" trains an LSTM classifier on real data.
