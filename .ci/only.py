"""Check that a tox environment holds exactly the optional packages it is meant to:
``python .ci/only.py sklearn`` passes where megatron-sklearn and scikit-learn are installed and
none of pandas, TensorFlow, Keras, SQLAlchemy, pydot or the other plugins is. Each package's
environment thereby proves that its tests pass with what a user of that package installs."""

import importlib.util
import sys

OPTIONAL = {
    "core": [],
    "sklearn": ["megatron_sklearn", "sklearn", "skops"],
    "keras": ["megatron_keras", "keras", "tensorflow"],
    "sql": ["megatron_sql", "sqlalchemy", "psycopg"],
    # dask's dataframe needs pandas and pyarrow; megatron-sql and megatron-sklearn serve storage and fit
    "dask": [
        *("megatron_dask", "dask", "distributed", "pandas", "pyarrow"),
        *("megatron_sql", "sqlalchemy", "psycopg", "megatron_sklearn", "sklearn", "skops"),
    ],
}
NEVER_ALONE = ["pandas", "pyarrow", "polars", "pydot", "tqdm", "IPython"]  # extras of the core, in 'all' only

environment = sys.argv[1]
wanted = set(OPTIONAL[environment])
every = {module for modules in OPTIONAL.values() for module in modules} | set(NEVER_ALONE)
present = {module for module in every if importlib.util.find_spec(module) is not None}
if present != wanted:
    sys.exit(
        f"tox -e {environment}: expected the optional packages {sorted(wanted)}, found {sorted(present)} "
        f"(missing {sorted(wanted - present)}, unexpected {sorted(present - wanted)})"
    )
print(f"tox -e {environment}: optional packages {sorted(present) or 'none'}, as expected")
