"""Run by tests/test_collectives.py in a subprocess with 4 forced CPU devices: the compiled data-parallel programs.

``python collectives_worker.py MODE OUT_FILE``, ``MODE`` the mesh's axis type, ``explicit`` or ``auto``.
For every case of :data:`CASES` (a model of ``sharding_worker.model``, with or without a mask, one
``recurrence``: every name and every plan for ``lstm``), it compiles, with the batch sharded over the mesh's
``data`` axis and the parameters replicated:

- the forward pass, ``jax.jit(apply)``;
- the training step, ``jax.jit(jax.value_and_grad(loss, argnums=(0, 1)))``: the gradients with respect to the
  parameters and the inputs.

It writes, per case and program, the collectives of the optimised HLO (:func:`collectives`), the parameters'
bytes, and whether the input gradient's sharding is the inputs'; or the error, if compiling raised. The
sequences are long enough (:data:`TIME`) that the fused backward runs several chunks, so that its outer loop
is in the program.
"""

import contextlib
import json
import pathlib
import re
import sys

from sharding_worker import BATCH, INPUT_DIM, model

DEVICES = 4
TIME = 48  # BATCH 16 rows per step: the fused backward's chunks hold 16 steps (256 rows), so 3 chunks
RECURRENCES = ("auto", "scan", "step", "fused")
COMPOSED = ("stacked", "stacked_bidirectional", "linen_lstm", "linen_bidirectional", "nnx_lstm", "nnx_bidirectional")
MASKS = ("unmasked", "masked")


def plans():
    """Every loop variant (tests/conftest.py's ``PLANS``), as the keyword arguments of ``jlstm.Plan``."""
    return [
        {"layout": layout, "chains": chains, "projection": projection, "backward": backward}
        for layout in ("batch", "stacked", "features")
        for chains in ((1,) if layout == "features" else (1, 2))
        for projection in (("step",) if layout == "stacked" else ("step", "hoisted"))
        for backward in ("fused", "autodiff")
    ]


def plan_name(plan: dict) -> str:
    return f"{plan['layout']}.{plan['chains']}ch.{plan['projection']}.{plan['backward']}"


LSTM_RECURRENCES = RECURRENCES + tuple(plan_name(p) for p in plans())
CASES = tuple(
    [f"lstm-{mask}-{rec}" for rec in LSTM_RECURRENCES for mask in MASKS]
    + [f"bidirectional-{mask}-{rec}" for rec in RECURRENCES for mask in MASKS]
    + [f"lstm_reset-{mask}-{rec}" for rec in RECURRENCES for mask in MASKS]
    + [f"{name}-{mask}-auto" for name in COMPOSED for mask in MASKS]
)
PROGRAMS = ("forward", "train")
COLLECTIVE = re.compile(
    r"=\s*(?P<shape>\([^=]*?\)|[a-z0-9]+\[[0-9,]*\](?:\{[^}]*\})?)\s+"
    r"(?P<op>all-gather|all-reduce|all-to-all|collective-permute|reduce-scatter|collective-broadcast|"
    r"ragged-all-to-all)(?P<suffix>-start|-done)?\("
)
COMMENT = re.compile(r"/\*.*?\*/")
ARRAY = re.compile(r"(?P<dtype>[a-z]+[0-9]*)\[(?P<dims>[0-9,]*)\]")
BYTES = {"pred": 1, "s8": 1, "u8": 1, "bf16": 2, "f16": 2, "s16": 2, "u16": 2, "f32": 4, "s32": 4, "u32": 4,
         "f64": 8, "s64": 8, "u64": 8}


def collectives(hlo: str) -> list[dict]:
    """Every collective written in an optimised HLO module: ``{"op", "bytes", "scalar_bytes", "line"}``.

    ``bytes`` counts the arrays of rank 1 and more, ``scalar_bytes`` the
    scalars (a loss's mean over the batch). Async collectives count once.

    An async collective is a ``-start`` and a ``-done``; the ``-start`` is counted, with the bytes of its
    result (for an all-reduce, the reduced values; a ``-start``'s tuple also holds its operands, counted
    once by halving where the two halves agree).
    """
    found = []
    for line in hlo.splitlines():
        line = COMMENT.sub("", line)  # a long tuple's /*index=5*/ markers
        match = COLLECTIVE.search(line)
        if not match or match["suffix"] == "-done":
            continue
        arrays = [(a["dtype"], [int(d) for d in a["dims"].split(",") if d]) for a in ARRAY.finditer(match["shape"])]
        sizes = [BYTES.get(dtype, 4) * _product(dims) for dtype, dims in arrays]
        if match["suffix"] == "-start" and len(sizes) % 2 == 0 and sizes[: len(sizes) // 2] == sizes[len(sizes) // 2 :]:
            sizes = sizes[: len(sizes) // 2]
        scalars = sum(size for size, (_, dims) in zip(sizes, arrays) if not dims)
        found.append({"op": match["op"], "bytes": sum(sizes) - scalars, "scalar_bytes": scalars,
                      "line": line.strip()[:300]})
    return found


def _product(dims) -> int:
    total = 1
    for d in dims:
        total *= d
    return total


def recurrence_of(name: str):
    import jlstm

    if name in RECURRENCES:
        return name
    return jlstm.Plan(**next(p for p in plans() if plan_name(p) == name))


def main(mode: str, out_file: str) -> None:
    import jax
    import jax.numpy as jnp
    from jax.sharding import AxisType, NamedSharding
    from jax.sharding import PartitionSpec as P

    jax.config.update("jax_numpy_dtype_promotion", "strict")
    jax.config.update("jax_numpy_rank_promotion", "raise")
    assert jax.device_count() == DEVICES, jax.devices()
    axis_type = {"explicit": AxisType.Explicit, "auto": AxisType.Auto}[mode]
    mesh = jax.make_mesh((DEVICES,), ("data",), axis_types=(axis_type,))
    rows, replicated = NamedSharding(mesh, P("data")), NamedSharding(mesh, P())
    keys = jax.random.split(jax.random.key(0), 2)
    x = jax.device_put(jax.random.normal(keys[0], (BATCH, TIME, INPUT_DIM)), rows)
    mask = jax.device_put(jax.random.bernoulli(keys[1], 0.7, (BATCH, TIME)), rows)
    context = jax.set_mesh(mesh) if mode == "explicit" else contextlib.nullcontext()

    results = {}
    for case in CASES:
        name, mask_kind, recurrence = case.split("-")
        params, apply = model(name, recurrence_of(recurrence))
        params = jax.device_put(params, replicated)
        m = mask if mask_kind == "masked" else None
        param_bytes = sum(leaf.nbytes for leaf in jax.tree.leaves(params))

        def forward(params, x, apply=apply, m=m):
            return jax.tree.leaves(apply(params, x, m))

        def loss(params, x, forward=forward):
            return sum(jnp.mean(leaf**2) for leaf in forward(params, x))

        for program, fn in (("forward", forward), ("train", jax.value_and_grad(loss, argnums=(0, 1)))):
            key = f"{case}/{program}"
            try:
                with context:
                    compiled = jax.jit(fn).lower(params, x).compile()
            except Exception as e:  # noqa: BLE001 -- recorded for the test, the other cases go on
                results[key] = {"error": f"{type(e).__name__}: {str(e)[:2000]}"}
                continue
            unit = {"collectives": collectives(compiled.as_text()), "param_bytes": param_bytes}
            if program == "train":
                input_gradient = compiled.output_shardings[1][1]
                unit["input_gradient_sharded"] = bool(input_gradient.is_equivalent_to(rows, x.ndim))
                unit["input_gradient_sharding"] = str(input_gradient)
            results[key] = unit
        print(case, flush=True)
    pathlib.Path(out_file).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main(*sys.argv[1:])
