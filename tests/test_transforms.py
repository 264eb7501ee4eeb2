"""Forward-mode autodiff through every public function, every recurrence, with and without a mask; and
Hessian-vector products in float64.

The grid is transform x function x recurrence x mask. Each function is differentiated with respect to its
parameters, inputs and initial state at once, along a few random unit directions ``V`` in the space of all
three: ``g(s) = ravel(f(primals + V s))`` at ``s = 0``, so that every argument has a tangent and the
Jacobians stay small. Every result is compared with

(a) the same transform of the ``"scan"`` recurrence (a plain ``lax.scan``), in float32, and
(b) float64 central differences of the scan's values (first order) and of its reverse-mode derivatives
    (second order), which use no forward mode at all.
"""

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from jax.flatten_util import ravel_pytree

import jlstm
import jlstm.linen
import jlstm.nnx
from conftest import COMPILER_OPTIONS, assert_close  # compiling is almost all of this file's time

BATCH, TIME, INPUT_DIM, UNITS = 2, 3, 2, 3
DIRECTIONS = 3  # the length of s
STEP = 1e-6  # of the central differences
MASK = np.array([[False, True, True], [True, True, False]])  # a leading masked step forwards, and backwards
RESET = np.array([[False, False, True], [True, True, False]])  # a segment of one step in each row
RECURRENCES = ("auto", "scan", "step", "fused")


def normal(seed, *shape, scale=1.0):
    return (scale * np.random.default_rng(seed).normal(size=shape)).astype(np.float32)


def random_params(seed, input_dim):
    return jlstm.LSTMParams(
        normal(seed, input_dim, 4 * UNITS, scale=0.5),
        normal(seed + 1, UNITS, 4 * UNITS, scale=0.5),
        normal(seed + 2, 4 * UNITS, scale=0.5),
    )


P = [random_params(0, INPUT_DIM), random_params(10, INPUT_DIM), random_params(20, UNITS)]
X = normal(30, BATCH, TIME, INPUT_DIM)
S = [normal(40 + i, BATCH, UNITS) for i in range(4)]
PROJ = 2  # a projected LSTM's proj_size: h is (BATCH, PROJ), c (BATCH, UNITS)
P_PROJECTED = jlstm.LSTMPParams(
    normal(50, INPUT_DIM, 4 * UNITS, scale=0.5),
    normal(51, PROJ, 4 * UNITS, scale=0.5),
    normal(52, 4 * UNITS, scale=0.5),
    normal(53, UNITS, PROJ, scale=0.5),
)


# --- the functions: builders (recurrence, mask) -> f(params, inputs, initial_state) -> outputs --------------


def lstm(recurrence, mask):
    def f(params, x, state):
        return jlstm.lstm(
            params, x, initial_state=state, mask=mask, return_sequences=True, recurrence=recurrence
        )

    return f


def lstm_reset(recurrence, mask):
    """Resets, read backwards: every segment's own state, and the state carried into the first."""

    def f(params, x, state):
        return jlstm.lstm(
            params, x, initial_state=state, mask=mask, reset=RESET, go_backwards=True, return_sequences=True,
            return_state=True, recurrence=recurrence,
        )

    return f


def bidirectional(recurrence, mask):
    def f(params, x, state):
        return jlstm.bidirectional(
            *params, x, initial_state=state, mask=mask, return_sequences=True, return_state=True,
            recurrence=recurrence,
        )

    return f


def stacked_lstm(recurrence, mask):
    def f(params, x, state):
        return jlstm.stacked_lstm(
            params, x, initial_state=state, mask=mask, return_state=True, recurrence=recurrence
        )

    return f


def linen_lstm(recurrence, mask):
    module = jlstm.linen.LSTM(
        UNITS, return_sequences=True, return_state=True, go_backwards=True, recurrence=recurrence
    )

    def f(params, x, state):
        return module.apply({"params": params._asdict()}, x, state, mask)

    return f


def nnx_lstm(recurrence, mask):
    graphdef, template = nnx.split(jlstm.nnx.LSTM(INPUT_DIM, UNITS, rngs=nnx.Rngs(0), recurrence=recurrence))

    def f(params, x, state):
        variables = nnx.State(template)
        nnx.replace_by_pure_dict(variables, params._asdict())
        return nnx.merge(graphdef, variables)(x, state, mask)

    return f


# name: (builder, (params, inputs, initial_state)). go_backwards and return_state are on in some rows and off
# in others; nnx.LSTM starts from the default zero state (None: no state to differentiate).
FUNCTIONS = {
    "lstm": (lstm, (P[0], X, (S[0], S[1]))),
    "lstm_projected": (lstm, (P_PROJECTED, X, (S[0][:, :PROJ], S[1]))),
    "lstm_reset": (lstm_reset, (P[0], X, (S[0], S[1]))),
    "bidirectional": (bidirectional, ((P[0], P[1]), X, tuple(S))),
    "stacked_lstm": (stacked_lstm, ([P[0], P[2]], X, (np.stack(S[:2]), np.stack(S[2:])))),
    "linen.LSTM": (linen_lstm, (P[0], X, (S[0], S[1]))),
    "nnx.LSTM": (nnx_lstm, (P[0], X, None)),
}


def flat(name, recurrence, masked, dtype):
    """The function as ``g: R^DIRECTIONS -> R^outputs``, ``g(s) = ravel(f(primals + V s))``."""
    build, primals = FUNCTIONS[name]
    f = build(recurrence, MASK if masked else None)
    theta, unravel = ravel_pytree(jax.tree.map(lambda a: np.asarray(a, dtype), primals))
    directions = np.random.default_rng(theta.size).normal(size=(theta.size, DIRECTIONS))
    directions = (directions / np.linalg.norm(directions, axis=0)).astype(dtype)
    return lambda s: ravel_pytree(f(*unravel(theta + directions @ s)))[0]


# --- the transforms: (transform(g, s) -> arrays, the same arrays from Differences) --------------------------


class Differences(NamedTuple):
    """float64 central differences of the scan recurrence's ``g`` at ``s = 0``; ``O`` outputs."""

    value: np.ndarray  # (O,): g(0) itself
    jacobian: np.ndarray  # (O, DIRECTIONS): of g
    hessian: np.ndarray  # (DIRECTIONS, DIRECTIONS): of jax.grad(loss(g))
    second: np.ndarray  # (O, DIRECTIONS, DIRECTIONS): of jax.jacrev(g)


TANGENT = np.array([0.3, -1.2, 0.7], np.float32)  # (DIRECTIONS,)


def cotangent(size):
    return np.random.default_rng(size).normal(size=size).astype(np.float32)


def loss(g):
    return lambda s: 0.5 * jnp.sum(g(s) ** 2)


def linearize(g, s):
    y, linear = jax.linearize(g, s)
    (transposed,) = jax.linear_transpose(linear, s)(cotangent(y.size))
    return y, linear(TANGENT), transposed


TRANSFORMS = {
    "jvp": (lambda g, s: jax.jvp(g, (s,), (TANGENT,)), lambda d: (d.value, d.jacobian @ TANGENT)),
    "jacfwd": (lambda g, s: jax.jacfwd(g)(s), lambda d: d.jacobian),
    "linearize": (linearize, lambda d: (d.value, d.jacobian @ TANGENT, cotangent(d.value.size) @ d.jacobian)),
    "hessian": (lambda g, s: jax.hessian(loss(g))(s), lambda d: d.hessian),
    "jacrev(jacfwd)": (lambda g, s: jax.jacrev(jax.jacfwd(g))(s), lambda d: d.second),
}


def run(transform, g):
    """One transform of ``g`` at ``s = 0``, compiled once (``lstm`` runs under jit inside in any case)."""
    apply = jax.jit(lambda s: TRANSFORMS[transform][0](g, s), compiler_options=COMPILER_OPTIONS)
    return jax.tree.map(np.asarray, apply(np.zeros(DIRECTIONS, np.float32)))


@functools.cache
def transformed(transform, name, recurrence, masked):
    """The float32 result, cached so that the scan's serves every recurrence's case."""
    return run(transform, flat(name, recurrence, masked, np.float32))


@functools.cache
def differences(name, masked):
    """float64 central differences along every direction in one vmapped call, cached per function and mask."""
    with jax.enable_x64(True):
        g = flat(name, "scan", masked, np.float64)
        at = jax.vmap(lambda s: (g(s), jax.grad(loss(g))(s), jax.jacrev(g)(s)))
        steps = STEP * np.eye(DIRECTIONS)
        points = np.concatenate([steps, -steps, np.zeros((1, DIRECTIONS))])  # +-STEP along each, then 0
        values, gradients, jacobians = jax.jit(at, compiler_options=COMPILER_OPTIONS)(points)

    def central(a):  # (2 * DIRECTIONS + 1, ...) -> (..., DIRECTIONS): d/ds_j, on the last axis
        a = np.asarray(a)
        return np.moveaxis((a[:DIRECTIONS] - a[DIRECTIONS:-1]) / (2 * STEP), 0, -1)

    return Differences(np.asarray(values[-1]), central(values), central(gradients), central(jacobians))


def compare(actual, expected, kind):
    for a, e in zip(jax.tree.leaves(actual), jax.tree.leaves(expected), strict=True):
        assert_close(a, e, kind)


MASKS = {False: "no_mask", True: "mask"}
# Ordered so that neighbours share a function and its cached references (xdist hands out consecutive cases).
GRID = [
    pytest.param(transform, name, recurrence, masked, id=f"{transform}-{name}-{recurrence}-{MASKS[masked]}")
    for name in FUNCTIONS
    for transform in TRANSFORMS
    for masked in (False, True)
    for recurrence in RECURRENCES
]


@pytest.mark.parametrize("transform, name, recurrence, masked", GRID)
def test_forward_mode(transform, name, recurrence, masked):
    actual = transformed(transform, name, recurrence, masked)
    compare(actual, transformed(transform, name, "scan", masked), "float32")
    # A float32 result against float64 differences (error about 1e-10): float32's tolerance.
    compare(actual, TRANSFORMS[transform][1](differences(name, masked)), "float32")


@pytest.mark.parametrize("transform", TRANSFORMS)
def test_a_wrong_derivative_fails(transform):
    """Right values with derivatives off by 1e-3 along one direction fail both comparisons."""
    g = flat("lstm", "step", True, np.float32)

    def wrong(s):
        e = jnp.exp(s[0])
        return g(s) + 1e-3 * (e - jax.lax.stop_gradient(e))

    actual = run(transform, wrong)
    with pytest.raises(AssertionError):
        compare(actual, transformed(transform, "lstm", "scan", True), "float32")
    with pytest.raises(AssertionError):
        compare(actual, TRANSFORMS[transform][1](differences("lstm", True)), "float32")


@pytest.mark.parametrize("recurrence", RECURRENCES)
def test_hessian_vector_products_in_float64(recurrence):
    """Forward over reverse mode in float64: the HVP equals central differences of the gradient, and the scan's."""
    params = jlstm.init_params(jax.random.key(0), 2, 2)
    x = jax.random.normal(jax.random.key(1), (2, 3, 2))
    with jax.enable_x64(True):
        params, x = jax.tree.map(lambda a: np.asarray(a, np.float64), (params, x))
        direction = np.asarray(jax.random.normal(jax.random.key(9), params.kernel.shape), np.float64)

        def grad(kernel, recurrence=recurrence):
            def loss(k):
                return jnp.sum(jlstm.lstm(params._replace(kernel=k), x, recurrence=recurrence) ** 2)

            return jax.grad(loss)(kernel)

        def hvp(recurrence):
            return jax.jvp(lambda k: grad(k, recurrence), (params.kernel,), (direction,))[1]

        eps = 1e-6
        numeric = (grad(params.kernel + eps * direction) - grad(params.kernel - eps * direction)) / (2 * eps)
        actual, scan = hvp(recurrence), hvp("scan")
    assert_close(actual, numeric, "float64_fd")
    assert_close(actual, scan, "float64")
