"""jinja2 templates for the generated C, Verilog testbenches and firmware build files."""
