"""The ``lgn`` command line."""

import click


@click.group()
def main():
    """Train logic gate networks and compile them to C, Verilog and packed code."""
