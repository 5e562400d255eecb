"""`${NAME}` references in configuration values, replaced from the environment.

Secrets (database passwords, robot tokens, API keys) stay out of the YAML file: the file names
the variable, the deployment's environment holds the value.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping

ENV_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def missing_variables(text: str, environ: Mapping[str, str] | None = None) -> list[str]:
    """Names of the ${VARIABLES} in `text` that the environment does not define."""
    env = os.environ if environ is None else environ
    return [name for name in ENV_REFERENCE.findall(text) if name not in env]


def expand_env(value: str, environ: Mapping[str, str] | None = None) -> str:
    """`value` with each `${NAME}` replaced; a variable that is not set is a ValueError naming it."""
    env = os.environ if environ is None else environ
    missing = missing_variables(value, env)
    if missing:
        raise ValueError(f"environment variable {missing[0]} is not set")
    return ENV_REFERENCE.sub(lambda match: env[match.group(1)], value)
