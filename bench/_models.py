"""Models shared by the benchmarks (run as scripts, so this folder is on sys.path)."""


def small_digits_netlist():
    """A small digits model (64 x 3 bits -> 2 x 600 gates) trained in seconds with lgn.train, lowered."""
    from lgn import data as datasets
    from lgn.compile.lower import lower
    from lgn.train import TrainConfig, train

    config = TrainConfig.for_dataset("digits", layers=2, width=600, tau=10, epochs=12, lr=0.05, encoder_bits=3)
    model = train(config, datasets.load("digits"), progress=False, log=lambda line: None).model
    return lower(model, meta={"dataset": "digits"})
