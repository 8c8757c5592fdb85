"""Amaranth hardware for netlists: gate core, popcount, argmax, pipelining, Verilog, synthesis."""
