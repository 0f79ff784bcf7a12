"""Transfer learning from a (distilled) backbone: ``search`` runs the grid search over base lr, ``lr_mult_list``
and L2 and retrains the chosen setting; ``grid`` holds its pieces (the grid, the validation split carved from the
training list, the shared starting weights)."""

from ssld.transfer.grid import (
    Setting,
    carve_val,
    default_grid,
    init_weights,
    parse_grid,
    ramp,
    settings,
)
from ssld.transfer.search import results_table, run_config, run_transfer

__all__ = ["Setting", "carve_val", "default_grid", "init_weights", "parse_grid", "ramp", "results_table",
           "run_config", "run_transfer", "settings"]
