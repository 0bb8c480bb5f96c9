"""Where dlib's model files are: an environment variable, else the ``face_recognition_models`` package.

In the bottom layer because the face models and the face detector and
landmark predictors both locate their files this way.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from .errors import ModelNotFoundError


def find_model_file(file_name: str, env_var: str, what: str) -> Path:
    """Locate one of dlib's model files: the path in ``env_var``, else the installed ``face_recognition_models``.

    The package is found without importing it (its ``__init__`` needs
    ``pkg_resources``). ``what`` names the file in the error.

    Raises
    ------
    ModelNotFoundError
        If neither holds the file.
    """
    env = os.environ.get(env_var)
    if env:
        path = Path(env)
        if not path.is_file():
            raise ModelNotFoundError(f"{env_var} points to {path}, which is not a file")
        return path
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is not None and spec.submodule_search_locations:
        for folder in spec.submodule_search_locations:
            path = Path(folder) / "models" / file_name
            if path.is_file():
                return path
    raise ModelNotFoundError(f"{what} was not found: install it with `pip install face_recognition_models==0.3.0` "
                             f"or set {env_var} to the path of {file_name}")
