"""lgn: train differentiable logic gate networks and compile them to C, Verilog and packed code."""

__version__ = "0.1.0"
