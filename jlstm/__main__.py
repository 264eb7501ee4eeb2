"""The ``jlstm`` command (``python -m jlstm`` is the same): the demo and the examples."""

import argparse
import importlib
import os
import sys

DESCRIPTION = (
    "The jlstm demo and examples. 'demo' needs nothing beyond jlstm; the others need the examples extra "
    '(pip install "jlstm[examples]"). Run a command with --help for its options.'
)

# command -> (module that defines add_arguments(parser) and run(args), one-line help, the extra its run needs)
COMMANDS = {
    "demo": (
        "jlstm.examples.demo",
        "the Keras tutorial: LSTM(1) on [0.1, 0.2, 0.3] with every flag combination",
        None,
    ),
    "seq2seq": (
        "jlstm.examples.seq2seq",
        "an encoder-decoder that learns to reverse digit sequences (optax)",
        "examples",
    ),
    "figure": (
        "jlstm.examples.figure",
        "draw the docs' 'Inside the loop' picture: h_t and c_t of LSTM(1) on [0.1, 0.2, 0.3]",
        "examples",
    ),
    "memory": (
        "jlstm.examples.memory",
        "a recurrent PPO agent that must remember a cue (gymnax's MemoryChain), against a feed-forward one",
        "examples",
    ),
}
# the modules each extra installs, by the name they are imported under
EXTRAS = {"examples": {"flax", "optax", "orbax", "matplotlib", "tqdm", "gymnax"}}


def prog() -> str:
    """``python -m jlstm`` when run as a module, else ``jlstm`` (the console script)."""
    return "python -m jlstm" if os.path.basename(sys.argv[0]) == "__main__.py" else "jlstm"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog=prog(), description=DESCRIPTION)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (module, help_text, _) in COMMANDS.items():
        sub_parser = sub.add_parser(name, help=help_text, description=help_text)
        sub_parser.set_defaults(module=module)
        importlib.import_module(module).add_arguments(sub_parser)
    args = parser.parse_args(argv)
    extra = COMMANDS[args.command][2]
    try:
        return importlib.import_module(args.module).run(args) or 0
    except ModuleNotFoundError as error:
        missing = (error.name or "").split(".")[0]
        if extra is None or missing not in EXTRAS[extra]:
            raise
        print(f'{parser.prog} {args.command}: needs {missing}, which is not installed; it comes with the '
              f'{extra} extra: pip install "jlstm[{extra}]"', file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
