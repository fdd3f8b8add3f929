"""tox's project plugin: when an environment's pinned TensorFlow needs an interpreter that is not
installed, end with what to install rather than tox's bare "could not find python interpreter"."""
import logging

from tox.plugin import impl
from tox.tox_env.errors import Skip
from tox.tox_env.python.api import NoInterpreter, Python

INSTALL_HINT = ("install it, e.g. `pyenv install {version}`, `uv python install {version}` or "
                "`apt-get install python{version}`, then run tox again")


@impl
def tox_env_teardown(tox_env) -> None:
    if not isinstance(tox_env, Python):
        return
    try:
        tox_env.base_python  # noqa: B018 - raises when no interpreter was found
    except (NoInterpreter, Skip):
        wanted = tox_env.conf["base_python"]  # e.g. ["python3.11"]: only a missing one fails
        version = wanted[0].removeprefix("python")
        logging.error("needs %s, which tox cannot find (%s): %s.", " or ".join(wanted),
                      tox_env.conf["description"], INSTALL_HINT.format(version=version))
