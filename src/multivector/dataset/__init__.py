"""The dataset layer: a folder of CSV and TOML read, validated and held as a :class:`Scenario`.

Everything a user can get wrong in a dataset is caught here, with file, row and column. Nothing
in this layer models anything; it imports only :mod:`multivector.sd` (to check the political
register's equations) and the shared utilities.
"""

from multivector.dataset.parameters import Values, parameter_table, run_values, table_values, timeline_by_year, year_values
from multivector.dataset.politics import Loop, PoliticalModel, load_politics
from multivector.dataset.scenario import (Focus, Parameter, Scenario, builtin_datasets, check_source_id, check_sources_table,
                                          copy_dataset, count_numbers, dataset_path, default_dataset, is_builtin,
                                          link_layer, load)

__all__ = ["Focus", "Loop", "Parameter", "PoliticalModel", "Scenario", "Values", "builtin_datasets",
           "check_source_id", "check_sources_table", "copy_dataset", "count_numbers", "dataset_path", "default_dataset", "is_builtin",
           "link_layer", "load", "load_politics", "parameter_table", "run_values",
           "table_values", "timeline_by_year", "year_values"]
