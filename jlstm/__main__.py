"""``python -m jlstm COMMAND``: the demo and the examples."""

import argparse
import importlib
import sys

# command -> (module that defines add_arguments(parser) and run(args), one-line help)
COMMANDS = {
    "demo": (
        "jlstm.examples.demo",
        "the Keras tutorial: LSTM(1) on [0.1, 0.2, 0.3] with every flag combination",
    ),
    "seq2seq": ("jlstm.examples.seq2seq", "an encoder-decoder that learns to reverse digit sequences (optax)"),
    "figure": (
        "jlstm.examples.figure",
        "draw the docs' 'Inside the loop' picture: h_t and c_t of LSTM(1) on [0.1, 0.2, 0.3]",
    ),
}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m jlstm", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (module, help_text) in COMMANDS.items():
        sub_parser = sub.add_parser(name, help=help_text, description=help_text)
        sub_parser.set_defaults(module=module)
        importlib.import_module(module).add_arguments(sub_parser)
    args = parser.parse_args(argv)
    return importlib.import_module(args.module).run(args) or 0


if __name__ == "__main__":
    sys.exit(main())
