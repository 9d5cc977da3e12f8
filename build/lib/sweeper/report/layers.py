"""A model's layer table, as Keras' model.summary() prints it: layer, output shape, parameters."""
from __future__ import annotations

import pandas as pd

from sweeper.training.tf import import_tensorflow


def layer_table(builder: str) -> tuple[pd.DataFrame, int]:
    """The layers of the model `builder` (a dotted make_model, e.g. tasks.cnn.make_model) returns,
    and its total parameter count. Imports TensorFlow (a few seconds)."""
    from hydra.utils import get_method

    import_tensorflow()  # without its C++ start-up lines
    model = get_method(builder)()
    rows = [{"layer": f"{layer.name} ({type(layer).__name__})",
             "output shape": str(tuple(layer.output.shape)).replace("None", "None"),
             "parameters": f"{layer.count_params():,}"} for layer in model.layers]
    return pd.DataFrame(rows), int(model.count_params())
