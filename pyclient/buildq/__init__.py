"""buildq: a PostgreSQL-centric build queue in the style of Hydra's queue runner."""

__version__ = "0.1.0"
