"""Runnable examples behind ``python -m jlstm``; they sit on top of the core."""
