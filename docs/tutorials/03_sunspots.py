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
# # Forecasting a real series
#
# Astronomers have counted sunspots every year since 1700. The yearly counts rise and fall in a cycle of about
# eleven years, but no two cycles are alike in height or length. statsmodels ships the series (1700 to 2008)
# inside the package, so there is nothing to download.
#
# The task: from the counts of the last 20 years, forecast next year's count. You will build the data set the
# way forecasting requires (split by time, scaled with the past only), train an LSTM, and hold it against two
# baselines that any forecast must beat before it is worth anything: *persistence* (next year equals this year)
# and a linear *autoregressive* model. Then you will read the error table and see who wins, and why.
#
# [Download this notebook](03_sunspots.ipynb) to run it yourself (`pip install "jlstm[tutorials]"`).

# %%
import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
import optax
import statsmodels.api as sm
from statsmodels.tsa.ar_model import ar_select_order

import jlstm

# %% [markdown]
# ## The series, and a split by time

# %%
data = sm.datasets.sunspots.load_pandas().data
years = data["YEAR"].to_numpy().astype(int)
counts = data["SUNACTIVITY"].to_numpy()
print(f"{len(counts)} years, {years[0]} to {years[-1]}")
print(f"counts from {counts.min():.0f} to {counts.max():.0f}")

# %% [markdown]
# A forecast is used on years that come *after* the data it learned from, so we test it the same way. We cut the
# series in three by year, and never shuffle across the cuts:
#
# - **training**, up to 1919: the models learn from these years;
# - **validation**, 1920 to 1949: used only to decide when to stop training the LSTM;
# - **test**, 1950 to 2008: held out until the very end; the error table is computed on these 59 years.

# %%
VALIDATION_FROM, TEST_FROM = 1920, 1950
train_years = years < VALIDATION_FROM

fig, ax = plt.subplots(figsize=(11, 3.2))
ax.plot(years, counts, color="black", lw=1)
ax.axvspan(VALIDATION_FROM, TEST_FROM, color="tab:orange", alpha=0.15,
           label="validation")
ax.axvspan(TEST_FROM, years[-1], color="tab:green", alpha=0.15, label="test")
ax.set(xlabel="year", ylabel="yearly sunspot count", xlim=(years[0], years[-1]))
ax.legend(loc="upper left")
plt.show()

# %% [markdown]
# Look at the cycles: rises are steeper than falls, and the peaks vary from about 50 to about 190. The test
# period holds the highest cycles of the record.
#
# ## Scaling, with the training years only
#
# Neural networks train best on numbers of order 1, so we subtract a mean and divide by a standard deviation. Both
# come from the training years alone: computing them on the whole series would let the test years leak into the
# model through the scaling.

# %%
mean, std = counts[train_years].mean(), counts[train_years].std()
scaled = ((counts - mean) / std).astype(np.float32)
print(f"mean {mean:.1f}, standard deviation {std:.1f} (training years only)")

# %% [markdown]
# ## Windows
#
# Each example is a window of the 20 counts before a year (the input, a sequence of 20 steps of one feature) and
# that year's count (the target). A window belongs to the split of its *target* year. A test window may read
# counts from before 1950: that is fine, those years are past when the forecast is made.

# %%
WINDOW = 20
targets_at = np.arange(WINDOW, len(counts))  # each window's target year
windows = np.stack([scaled[t - WINDOW:t] for t in targets_at])[..., None]
target_years = years[targets_at]
train, test = target_years < VALIDATION_FROM, target_years >= TEST_FROM
split = {"train": train, "validation": ~train & ~test, "test": test}
print("windows:", windows.shape, "(examples, years, features)")
print({name: int(mask.sum()) for name, mask in split.items()})

# %% [markdown]
# ## Baseline 1: persistence
#
# "Next year will be like this year." No parameters at all. On a slow cycle it is a strong first guess, and it is
# wrong by exactly the change from one year to the next.

# %%
forecasts = {"persistence": counts[targets_at - 1]}

# %% [markdown]
# ## Baseline 2: an autoregressive model
#
# `AutoReg` forecasts next year as a weighted sum of the last `p` years plus a constant, with the weights fitted
# by least squares. `ar_select_order` picks `p` (up to 20, the window length) by the Akaike information criterion,
# on the training years only. Then `apply` runs the fitted model over the whole series, and `predict` gives its
# one-step forecast for every year from the true counts before it, as the LSTM will have.

# %%
selection = ar_select_order(counts[train_years], maxlag=WINDOW, ic="aic")
autoreg = selection.model.fit()
p = len(selection.ar_lags)
forecasts[f"AutoReg({p})"] = autoreg.apply(counts).predict()[targets_at]
print(f"lags chosen: {p}; {len(autoreg.params)} coefficients, "
      f"fitted on {int(train_years.sum())} years")

# %% [markdown]
# ## The LSTM forecaster
#
# An `LSTM(16)` reads the window, and a linear layer turns its last hidden state into one number, the scaled
# forecast. The parameters are a plain dictionary; the model is a function of them.

# %%
UNITS = 16


def init(key):
    lstm_key, head_key = jax.random.split(key)
    return {
        "lstm": jlstm.init_params(lstm_key, input_dim=1, units=UNITS),
        "w": jax.random.normal(head_key, (UNITS,)) / np.sqrt(UNITS),
        "b": jnp.zeros(()),
    }


def forecast(params, windows):  # (examples, 20, 1) -> (examples,)
    return jlstm.lstm(params["lstm"], windows) @ params["w"] + params["b"]


def mse(params, windows, targets):
    return jnp.mean((forecast(params, windows) - targets) ** 2)

# %% [markdown]
# Training is full-batch Adam on the squared error of the training windows. A neural network's result depends
# on its random start, so we train **5 LSTMs at once**, from 5 seeds: `jax.vmap` over a stack of parameter sets
# turns the training step for one model into a step for all five.
#
# Every 10 steps we measure each model on the validation windows, and keep each model's parameters from the step
# where its validation error was lowest (early stopping). The test years play no part.

# %%
SEEDS, STEPS = 5, 600
optimizer = optax.adam(3e-3)
targets = scaled[targets_at]
x_train, y_train = windows[split["train"]], targets[split["train"]]
x_val, y_val = windows[split["validation"]], targets[split["validation"]]


@jax.jit
@jax.vmap
def train_step(params, opt_state):
    loss, grads = jax.value_and_grad(mse)(params, x_train, y_train)
    updates, opt_state = optimizer.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, loss


validation_mse = jax.jit(jax.vmap(lambda params: mse(params, x_val, y_val)))

# %% [markdown]
# The loop. `keep_improved` takes, seed by seed, the new parameters where the validation error went down and the
# kept ones elsewhere.

# %%
def keep_improved(best, new, improved):  # improved: one bool per seed
    def pick(b, n):
        return jnp.where(improved.reshape((-1,) + (1,) * (n.ndim - 1)), n, b)
    return jax.tree.map(pick, best, new)


params = jax.vmap(init)(jax.random.split(jax.random.key(0), SEEDS))
print("parameters per forecaster:",
      sum(leaf[0].size for leaf in jax.tree.leaves(params)))  # leaves: (5, ...)
opt_state = jax.vmap(optimizer.init)(params)
best, best_val = params, np.full(SEEDS, np.inf)
curves = {"train": [], "validation": []}
for step in range(STEPS):
    params, opt_state, loss = train_step(params, opt_state)
    if step % 10 == 9:
        val = np.asarray(validation_mse(params))
        best = keep_improved(best, params, val < best_val)
        best_val = np.minimum(best_val, val)
        curves["train"].append(np.asarray(loss))
        curves["validation"].append(val)
print("best validation MSE of each seed (scaled units):", np.round(best_val, 3))

# %% [markdown]
# The learning curves of the five models: training error in blue, validation error in orange.

# %%
fig, ax = plt.subplots(figsize=(8, 3.5))
checked = np.arange(10, STEPS + 1, 10)
ax.semilogy(checked, np.array(curves["train"]), color="tab:blue", lw=0.8)
ax.semilogy(checked, np.array(curves["validation"]), color="tab:orange", lw=0.8)
ax.set(xlabel="training step", ylabel="mean squared error (scaled)",
       title="5 seeds: training (blue), validation (orange)")
plt.show()

# %% [markdown]
# What to look at: the training error keeps falling, but the validation error stops falling early and then
# rises. The models start to memorise the 200 training windows instead of learning the cycle: *overfitting*.
# Early stopping keeps each model as it was at its validation minimum.
#
# Now the forecasts on every window, back in sunspot counts. Besides each seed's forecast we also take their
# average, an *ensemble*: a common way to reduce the effect of the random start.

# %%
every_seed = jax.vmap(forecast, in_axes=(0, None))(best, windows)  # (5, ...)
lstm_forecasts = np.asarray(every_seed) * std + mean
forecasts["LSTM, 5 seeds averaged"] = lstm_forecasts.mean(axis=0)

# %% [markdown]
# ## The error table, on the test years
#
# Two errors, both in sunspot counts: the mean absolute error (MAE) and the root mean squared error (RMSE), which
# punishes large misses more. For the single LSTMs, the table gives the mean over the 5 seeds, and the line below
# it the best and the worst seed. (Picking the best seed *by its test error* would be cheating: it is shown only
# to show the spread.)

# %%
truth = counts[targets_at][split["test"]]


def errors(forecast):
    miss = forecast[split["test"]] - truth
    return np.mean(np.abs(miss)), np.sqrt(np.mean(miss**2))


table = {name: errors(f) for name, f in forecasts.items()}
per_seed = np.array([errors(f) for f in lstm_forecasts])  # (5, 2)
table["LSTM, one seed (mean of 5)"] = tuple(per_seed.mean(axis=0))

print(f"test years {TEST_FROM}-{years[-1]}: {len(truth)} one-year forecasts\n")
print(f"{'model':28s} {'MAE':>6s} {'RMSE':>6s}")
for name, (mae, rmse) in sorted(table.items(), key=lambda item: item[1][1]):
    print(f"{name:28s} {mae:6.1f} {rmse:6.1f}")
low, high = per_seed[:, 1].min(), per_seed[:, 1].max()
print(f"\nsingle LSTMs: RMSE {low:.1f} to {high:.1f} over the {SEEDS} seeds")

# %% [markdown]
# And the verdict, computed from the table rather than written in advance:

# %%
ranking = sorted(table, key=lambda name: table[name][1])
winner, runner_up = ranking[0], ranking[1]
margin = table[runner_up][1] / table[winner][1] - 1
print(f"Lowest RMSE on the test years: {winner} ({table[winner][1]:.1f}),")
print(f"{margin:.0%} below the next, {runner_up} ({table[runner_up][1]:.1f}).")
autoreg_rmse = table[f"AutoReg({p})"][1]
single = table["LSTM, one seed (mean of 5)"][1] < autoreg_rmse
beaten_by = int(np.sum(per_seed[:, 1] < autoreg_rmse))
print(f"A single LSTM beats AutoReg({p}) on average: {single}")
print(f"Seeds whose LSTM beats AutoReg({p}): {beaten_by} of {SEEDS}")
# Both learned models must beat doing nothing:
persistence_rmse = table["persistence"][1]
assert autoreg_rmse < persistence_rmse
assert table["LSTM, 5 seeds averaged"][1] < persistence_rmse

# %% [markdown]
# ## Forecasts against the truth

# %%
test_years = target_years[split["test"]]
fig, ax = plt.subplots(figsize=(11, 4))
ax.plot(test_years, truth, color="black", lw=2, label="observed")
for (name, f), style in zip(forecasts.items(), [":", "--", "-"]):
    label = f"{name} (RMSE {table[name][1]:.1f})"
    ax.plot(test_years, f[split["test"]], ls=style, label=label)
ax.set(xlabel="year", ylabel="yearly sunspot count", ylim=(0, 260),
       title="One-year-ahead forecasts on the test years")
ax.legend(loc="upper right", ncols=2, fontsize=9)
plt.show()

# %% [markdown]
# ## Who wins, and why
#
# Read the table and the verdict above; here is how to understand them.
#
# - **Persistence** is always one year late: it draws the observed curve shifted right by a year, and misses most
#   on the steep rises and falls. Anything that has learned the shape of the cycle should beat it, and both
#   learned models do (the notebook checks this).
# - **AutoReg** is a linear model with one coefficient per lag, fitted in closed form: there is no random start, no
#   learning rate and no stopping rule to get wrong. A weighted sum of the last years describes a noisy cycle well,
#   which is why autoregression is the classic model for this very series.
# - **The LSTM** can in principle do more, for instance learn that rises are steeper than falls, which no weighted
#   sum can express. But it has about 60 times as many parameters as AutoReg and only 200 training windows, so
#   its result depends on its seed (look at the spread in the table) and on when it stops. On this much data the
#   flexibility of a neural network is as much a risk as an advantage; averaging seeds reduces that risk.
# - **The test years are unusual**: they include the highest cycles ever recorded, higher than any in the
#   training years. A model has to extrapolate there, and a linear model extrapolates more gracefully than a
#   network whose `tanh` units saturate. In the plot, look at the highest peak, 1957: which forecasts reach it?
#
# The lesson is the method, not the winner: split by time, fit everything (even the scaling) on the past, compare
# with simple baselines, and report the spread over seeds. A network that beats persistence but not a linear
# model is not broken: it tells you something about the data and how much of it there is.
